"""The value checks of the edge (issue 17): what hostile text they refuse, and what they keep."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from authsvc.rules import values
from authsvc.rules.values import Rejected

INDIC_12 = "\u0661\u0662"  # Arabic-Indic "12": str.isdigit() says yes


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),  # brackets in strings do not nest
        ('{"a": "\\"[[["}', 1),  # nor after an escaped quote
        ("[" * 5000 + "]" * 5000, 5000),
    ],
)
def test_nesting_is_measured_without_parsing(text, depth):
    assert values.nesting(text) == depth


def test_a_json_document_is_bounded_before_it_is_parsed():
    assert values.json_document('{"id": "x", "response": {"a": [1]}}')
    for bad, why in (
        ("[" * 5000 + "]" * 5000, "nest"),
        ('{"a":' * 2500 + "1" + "}" * 2500, "nest"),
        ("{" + " " * values.JSON_MAX + "}", "KiB"),
        ("[1, 2]", "object"),
        ("{'a': 1}", "valid JSON"),
        ("  ", "required"),
    ):
        with pytest.raises(Rejected, match=why):
            values.json_document(bad)


def test_nesting_within_the_limit_parses():
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(values.JSON_MAX_DEPTH - 1):
        inner["a"] = inner = {}
    assert values.json_document(json.dumps(nested))
    inner["a"] = {}
    with pytest.raises(Rejected):
        values.json_document(json.dumps(nested))


def test_only_ascii_digits_are_a_number():
    assert values.is_ascii_number("0123456789")
    for text in ("", "²", INDIC_12, "\uff11\uff12", "12\n", " 12", "-1", "1_000"):
        assert not values.is_ascii_number(text), text
        assert not text.isascii() or not text.isdigit() or text != text.strip()


@pytest.mark.parametrize(
    "name",
    ["lap\x00top", "\u202egpj.exe", "a\nb", "\x1b[31m", "a\u2028b", "\u2067x\u2069", "\u200fx"],
)
def test_passkey_names_refuse_controls_bidi_and_newlines(name):
    with pytest.raises(Rejected):
        values.passkey_name(name)


def test_passkey_names_keep_joiners_and_default_when_empty():
    assert values.passkey_name("  \U0001f468\u200d\U0001f4bb  ") == "\U0001f468\u200d\U0001f4bb"
    assert values.passkey_name("   ") == "passkey"
    assert values.name("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")  # Persian with ZWNJ


@pytest.mark.parametrize("value", [INDIC_12 * 16, "\u0661" * 8 + "-1111-1111-1111-" + "1" * 12])
def test_a_uuid_of_non_ascii_digits_is_refused(value):
    with pytest.raises(Rejected):
        values.uuid_id(value)


@pytest.mark.parametrize("email", ["ada\n@example.com", "ada@example\n.com", "ada@example.c\u0661"])
def test_an_email_is_matched_whole(email):
    with pytest.raises(Rejected):
        values.email(email)


UPDATABLE = ("email", "first_name", "locale")


@pytest.mark.parametrize(
    ("paths", "given", "chosen"),
    [
        (["locale", "email", "locale"], set(), ["locale", "email"]),  # once each, as named
        (["*"], set(), list(UPDATABLE)),
        ([], {"locale", "email"}, ["email", "locale"]),  # empty: the fields set
    ],
)
def test_an_update_mask_names_the_fields_to_set(paths, given, chosen):
    assert values.update_mask(paths, UPDATABLE, given) == chosen


@pytest.mark.parametrize(
    ("paths", "why"),
    [
        (["password_hash"], "cannot be updated (email, first_name, locale)"),
        (["email", "id\x00"], "cannot be updated"),
        ([], "names no field to update"),
    ],
)
def test_an_update_mask_refuses_other_fields_and_nothing(paths, why):
    with pytest.raises(Rejected, match=why.replace("(", r"\(").replace(")", r"\)")) as refused:
        values.update_mask(paths, UPDATABLE, set())
    assert "\x00" not in str(refused.value)  # a path is never echoed


def test_a_users_batch_holds_one_to_the_maximum():
    assert values.users_batch(3, 3) == 3
    with pytest.raises(Rejected, match="is required"):
        values.users_batch(0, 3)
    with pytest.raises(Rejected, match="at most 3 users"):
        values.users_batch(4, 3)


def test_a_creation_time_is_1970_or_later():
    assert values.since_1970(None) is None
    assert values.since_1970(datetime(1970, 1, 1, tzinfo=UTC)) is not None
    with pytest.raises(Rejected, match="1970 or later"):
        values.since_1970(datetime(1969, 12, 31, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize(
    ("code", "totp"),
    [
        ("123456", True),
        ("123 456", True),
        ("12345", False),
        (INDIC_12 * 3, False),
        ("abcdef", False),
    ],
)
def test_only_six_ascii_digits_read_as_a_totp_code(code, totp):
    assert values.is_totp_shaped(code) is totp
