"""Position cursors: one codec for the event and revocation feeds, wire formats kept."""

from __future__ import annotations

import pytest

from authsvc.rules.cursors import EVENTS, MAX_POSITION, REVOCATIONS
from authsvc.rules.events import after_cursor
from authsvc.rules.values import Rejected


def test_event_cursors_round_trip_and_sort_like_positions():
    assert EVENTS.decode(EVENTS.encode(0)) == 0
    assert EVENTS.decode(EVENTS.encode(2**62)) == 2**62
    assert EVENTS.decode(EVENTS.encode(MAX_POSITION)) == MAX_POSITION
    assert EVENTS.encode(9) < EVENTS.encode(10) < EVENTS.encode(2**40)


def test_cursors_already_handed_out_keep_their_text():
    # Consumers store cursors across upgrades, and may resume on an older replica.
    assert EVENTS.encode(26) == "000000000000001a"
    assert EVENTS.decode("000000000000001a") == 26
    assert REVOCATIONS.encode(3) == "r3"
    assert REVOCATIONS.decode("r3") == 3
    assert REVOCATIONS.decode("r0003") == 3
    assert REVOCATIONS.decode(f"r{MAX_POSITION}") == MAX_POSITION


@pytest.mark.parametrize(
    "bad",
    [
        "now",
        "zz",
        "0000000000000001 ",
        "-000000000000001",
        "1" * 17,
        "000000000000001A",  # never handed out in upper case
        "8000000000000000",  # beyond any position
        "r1",  # a revocation cursor
        "\u0661" * 16,
    ],
)
def test_malformed_event_cursors_are_refused(bad):
    with pytest.raises(Rejected, match="cursor of an Event"):
        EVENTS.decode(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "r",
        "1",
        "x1",
        "r-1",
        "r 1",
        "r1.0",
        "r\u0661",
        f"r{MAX_POSITION + 1}",
        "r" + "0" * 20,
        EVENTS.encode(1),
    ],
)
def test_malformed_revocation_cursors_are_refused(bad):
    with pytest.raises(Rejected, match="cursor of WatchRevocations"):
        REVOCATIONS.decode(bad)


def test_an_empty_cursor_is_the_start_of_either_feed():
    assert EVENTS.after("") == 0 and REVOCATIONS.after("") == 0
    assert REVOCATIONS.after("r7") == 7


def test_event_after_cursor_also_takes_now():
    assert after_cursor("now") is None
    assert after_cursor("") == 0
    assert after_cursor(EVENTS.encode(5)) == 5
    with pytest.raises(Rejected):
        after_cursor("r5")
