"""The account events outbox: an event is written with its change, or not at all."""

from __future__ import annotations

import uuid

import pytest

from authsvc.flows.changes import Changes, Who
from authsvc.rules.events import SYSTEM, Actor, ActorKind, event_data
from authsvc.storage import events
from authsvc.storage.validation_cache import ValidationCache


class Boom(Exception):
    pass


@pytest.fixture
def changes(database, clock):
    return Changes(database, ValidationCache(0), clock)


def all_events(database):
    with database.transaction(writes=False) as db:
        return events.events_after(db, 0, 1000)


def test_a_committed_change_has_its_event(changes, database, clock):
    user_id = uuid.uuid4()
    with changes.open() as change:
        change.event("user.enabled", Who(user_id))
        change.event("passkey.removed", Who(user_id), Actor.user(user_id), passkey_id="p1")
    first, second = all_events(database)
    assert (first.type, first.user_id, first.time) == ("user.enabled", user_id, clock())
    assert (first.actor_kind, first.actor_name) == (SYSTEM.kind, "")  # outside an RPC
    assert second.position > first.position
    assert (second.actor_kind, second.actor_name) == (ActorKind.USER, str(user_id))
    assert event_data(second) == {"passkey_id": "p1"}


def test_a_rolled_back_change_has_no_event(changes, database):
    with pytest.raises(Boom), changes.open() as change:
        change.event("user.enabled", Who(uuid.uuid4()))
        raise Boom
    assert all_events(database) == []


def test_undeclared_data_is_refused(changes, database):
    with pytest.raises(ValueError, match="passkey_id"), changes.open() as change:
        change.event("passkey.removed", Who(uuid.uuid4()), secret="x")
    with pytest.raises(ValueError, match="unknown"), changes.open() as change:
        change.event("user.exploded")
    assert all_events(database) == []


def test_events_after_pages_in_order_and_filters_types(changes, database):
    for _ in range(3):
        with changes.open() as change:
            change.event("user.enabled", Who(uuid.uuid4()))
            change.event("user.disabled", Who(uuid.uuid4()))
    with database.transaction(writes=False) as db:
        every = events.events_after(db, 0, 100)
        assert [e.position for e in every] == sorted(e.position for e in every)
        assert len(every) == 6
        page = events.events_after(db, every[1].position, 2)
        assert [e.id for e in page] == [every[2].id, every[3].id]
        enabled = events.events_after(db, 0, 100, frozenset({"user.enabled"}))
        assert [e.type for e in enabled] == ["user.enabled"] * 3
        assert events.last_position(db) == every[-1].position
