"""The one LISTEN connection of a server process: channels, subscribers, reconnection.

PostgreSQL only: SQLite has no notifications (its subscribers poll).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from authsvc.storage import notifications
from authsvc.storage.notifications import Listener, Subscription
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.test_revocation_feed import Watch
from tests.helpers import sign_in, sign_up, wait_until

pytestmark = pytest.mark.parametrize("migrated_url", ["postgresql"], indirect=True)

# A hang guard, not a timing.
GIVE_UP_SECONDS = 10.0


def until(check: Callable[[], Any]) -> Any:
    """Polls ``check`` until it returns something truthy; fails after GIVE_UP_SECONDS."""
    return wait_until(check, GIVE_UP_SECONDS, interval=0.01)


class Recorder:
    """A subscriber that writes down what it is told."""

    def __init__(self, channel: str) -> None:
        self.heard: list[str] = []
        self._lock = threading.Lock()
        self.subscription = Subscription(
            channel,
            notified=lambda payloads: self._note(*(f"notice {p}" for p in payloads)),
            listening=lambda: self._note("listening"),
            deaf=lambda: self._note("deaf"),
        )

    def _note(self, *what: str) -> None:
        with self._lock:
            self.heard.extend(what)

    def told(self) -> list[str]:
        with self._lock:
            return list(self.heard)


def notify(database, channel: str, payload: str) -> None:
    with database.transaction() as db:
        db.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


def terminate(database, pid: int | None) -> None:
    with database.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def listen_backends(database) -> set[int]:
    """The backends of this database whose last statement was a LISTEN."""
    query = text(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
    )
    with database.engine.connect() as conn:
        return set(conn.scalars(query))


def test_each_subscriber_hears_its_channel_and_every_reconnection(db_url, database, monkeypatch):
    monkeypatch.setattr(notifications, "RECONNECT_DELAYS", (0.05,))
    listener = Listener(db_url)
    first, second = Recorder("authsvc_test_first"), Recorder("authsvc_test_second")
    listener.subscribe(first.subscription)
    listener.subscribe(second.subscription)
    listener.start()
    try:
        assert listener.listening.wait(GIVE_UP_SECONDS)
        notify(database, "authsvc_test_first", "one")
        notify(database, "authsvc_test_second", "two")
        until(lambda: "notice one" in first.told() and "notice two" in second.told())
        terminate(database, listener.backend_pid)
        until(lambda: listener.drops == 1)
        # Deaf is told before the drop counts; listening again only after it.
        assert first.told() == ["listening", "notice one", "deaf"]
        assert listener.listening.wait(GIVE_UP_SECONDS), "the listener did not reconnect"
        notify(database, "authsvc_test_first", "three")
        until(lambda: first.told()[-1:] == ["notice three"])
        assert first.told() == ["listening", "notice one", "deaf", "listening", "notice three"]
        assert second.told() == ["listening", "notice two", "deaf", "listening"]
    finally:
        listener.stop()


def test_subscribing_after_the_start_is_refused(db_url):
    listener = Listener(db_url)
    listener.start()
    try:
        with pytest.raises(RuntimeError):
            listener.subscribe(Recorder("authsvc_test_late").subscription)
    finally:
        listener.stop()


def test_a_server_process_holds_one_listen_connection(start_server, database):
    server, _ = start_server(validation_cache=100)
    listener = server.infra.listener
    assert listener is not None and listener.listening.wait(GIVE_UP_SECONDS)
    # Backends of servers stopped by earlier tests may take a moment to go.
    until(lambda: listen_backends(database) == {listener.backend_pid})


def test_streams_keep_following_while_the_listener_is_down(start_server, database, monkeypatch):
    # The listener stays down for the rest of the test once its connection dies.
    monkeypatch.setattr(notifications, "RECONNECT_DELAYS", (60.0,))
    _, writer = start_server()
    deaf_server, deaf = start_server()
    listener = deaf_server.infra.listener
    assert listener is not None and listener.listening.wait(GIVE_UP_SECONDS)
    sign_up(writer)
    session = sign_in(writer)
    events = deaf.WatchEvents(pb.WatchEventsRequest(after_cursor="now"), timeout=30)
    revocations = Watch(deaf)
    revocations.next(subject=False)  # caught up
    terminate(database, listener.backend_pid)
    until(lambda: listener.drops == 1)
    assert not listener.listening.is_set()
    # Made on another replica: only the deaf replica's polling can see them.
    writer.RevokeSession(pb.RevokeSessionRequest(session_id=session.session.id), timeout=10)
    assert revocations.next().session_id == session.session.id
    revocations.close()
    event = next(e for e in events if e.type != "heartbeat")
    assert (event.type, event.session_id) == ("session.revoked", session.session.id)
    events.cancel()
