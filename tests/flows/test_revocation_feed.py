"""WatchRevocations: the snapshot, live entries, heartbeats, resuming, and the purge."""

from __future__ import annotations

import queue
import threading
from concurrent import futures
from datetime import timedelta
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.storage.models import Revocation
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import fails, sign_in, sign_up, wait_until

FAST = {
    "secret_key": SecretKeys.parse(Fernet.generate_key().decode()),
    "revocation_heartbeat": timedelta(milliseconds=50),
}


class Watch:
    """A WatchRevocations stream read by a thread into a queue."""

    def __init__(self, stub: Any, after: str = "") -> None:
        self.call = stub.WatchRevocations(pb.WatchRevocationsRequest(after_cursor=after))
        self.messages: queue.Queue[pb.Revocation] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError:
            pass

    def next(self, subject: bool = True, timeout: float = 10.0) -> pb.Revocation:
        """The next entry (``subject``) or heartbeat, skipping the other kind."""

        def wanted() -> pb.Revocation | None:
            try:
                message = self.messages.get(timeout=0.5)  # waits for the next message itself
            except queue.Empty:
                return None
            return message if (message.WhichOneof("subject") is not None) == subject else None

        kind = "an entry" if subject else "a heartbeat"
        return wait_until(wanted, timeout, interval=0, what=kind)

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(timeout=5)


@pytest.fixture
def stub(start_server) -> Any:
    return start_server(**FAST)[1]


def test_snapshot_then_live_entries_then_resume_after_a_cursor(stub) -> None:
    user = sign_up(stub)
    first, second, third = sign_in(stub), sign_in(stub), sign_in(stub)
    stub.RevokeSession(pb.RevokeSessionRequest(session_id=first.session.id))

    watch = Watch(stub)
    snapshot = watch.next()
    assert snapshot.session_id == first.session.id
    assert snapshot.expire_time.ToDatetime() > snapshot.not_before.ToDatetime()
    caught_up = watch.next(subject=False)  # the heartbeat that ends the snapshot
    assert caught_up.cursor == snapshot.cursor

    stub.DeleteSession(pb.DeleteSessionRequest(session_token=second.session_token))
    live = watch.next()
    assert live.session_id == second.session.id
    watch.close()

    stub.DisableUser(pb.DisableUserRequest(id=user.id))
    resumed = Watch(stub, after=live.cursor)
    entries = {resumed.next().WhichOneof("subject") for _ in range(2)}
    assert entries == {"session_id", "user_id"}  # the third session, then the user
    resumed.close()
    assert third.session.id  # revoked with its user, never sent before


def test_heartbeats_keep_coming_with_nothing_to_say(stub) -> None:
    watch = Watch(stub)
    beats = [watch.next(subject=False) for _ in range(3)]
    assert all(b.cursor and not b.HasField("not_before") for b in beats)
    watch.close()


def test_a_refresh_is_no_revocation(stub, database) -> None:
    sign_up(stub)
    signed_in = sign_in(stub)
    stub.RefreshSession(pb.RefreshSessionRequest(update_token=signed_in.update_token))
    with database.transaction(writes=False) as db:
        assert db.scalar(select(func.count()).select_from(Revocation)) == 0


@pytest.mark.parametrize("bad", ["nope", "r", "r-1", f"r{2**63}", "0000000000000001"])
def test_a_cursor_that_is_not_one_is_an_invalid_argument(stub, bad) -> None:
    call = stub.WatchRevocations(pb.WatchRevocationsRequest(after_cursor=bad))
    failed = fails(lambda request, timeout: next(iter(call)), None)
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.fields == ["after_cursor"]


def test_concurrent_revocations_all_reach_the_watcher_in_cursor_order(stub) -> None:
    sign_up(stub)
    sessions = [sign_in(stub).session.id for _ in range(24)]
    watch = Watch(stub)
    watch.next(subject=False)
    with futures.ThreadPoolExecutor(6) as pool:
        list(
            pool.map(lambda s: stub.RevokeSession(pb.RevokeSessionRequest(session_id=s)), sessions)
        )
    received = [watch.next() for _ in sessions]
    watch.close()
    assert sorted(r.session_id for r in received) == sorted(sessions)
    positions = [int(r.cursor[1:]) for r in received]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_the_purge_forgets_expired_revocations_but_keeps_the_last_position(
    start_server, clock, database
) -> None:
    server, stub = start_server(**FAST)
    sign_up(stub)
    revoked = [sign_in(stub).session.id for _ in range(3)]
    for session_id in revoked:
        stub.RevokeSession(pb.RevokeSessionRequest(session_id=session_id))
    clock.advance(timedelta(minutes=7))  # past one access-token TTL (and the skew margin)
    done = server.flows.housekeeping.purge()
    assert done.revocations == 2
    with database.transaction(writes=False) as db:
        (kept,) = db.scalars(select(Revocation.position))
    assert kept == 3
    watch = Watch(stub)  # nothing left that matters: only heartbeats, up to the last position
    cursors = []
    while "r3" not in cursors:  # the replica's feed reads the table within 50 ms
        message = watch.messages.get(timeout=10)
        assert message.WhichOneof("subject") is None
        cursors.append(message.cursor)
    watch.close()
