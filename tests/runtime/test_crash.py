"""``kill -9`` authsvc (on PostgreSQL) mid-traffic: nothing acknowledged is lost.

A few client threads sign up users, sign them in and rotate their tokens against an
``authsvc serve`` subprocess; every call that returned OK is recorded. The process is
SIGKILLed while they run, restarted, and the database must hold exactly what was
acknowledged: every user, every session under its newest acknowledged tokens, no
rotated token that still works, nothing half-written.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from sqlalchemy import create_engine, text

from authsvc.storage import migrate
from authsvc.storage.engine import make_engine
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import create_pg_database, drop_pg_database
from tests.helpers import failure, wait_until
from tests.serve_process import ServeProcess

CLIENTS = 3
ACKS_BEFORE_KILL = 60  # acknowledged calls in each round before the SIGKILL
ROUNDS = 2


@dataclass
class AckedSession:
    """A session as its client last saw it acknowledged."""

    id: str
    user_id: str
    session_token: str
    update_token: str
    rotated: list[tuple[str, str]] = field(default_factory=list)  # acked (session, update)
    in_doubt: bool = False  # a refresh was in flight when the server died


@dataclass
class Ledger:
    """Everything acknowledged, across all client threads."""

    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (email, password)
    sessions: list[AckedSession] = field(default_factory=list)
    acks: int = 0
    endings: list[grpc.StatusCode] = field(default_factory=list)  # how each client stopped
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self) -> None:
        with self.lock:
            self.acks += 1


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database("authsvc_crash")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


def client(stub: pb_grpc.AuthServiceStub, ledger: Ledger, n: int) -> None:
    """Signs up, signs in, refreshes, until the server goes away."""
    mine: list[AckedSession] = []
    try:
        for i in itertools.count():
            email, password = f"c{n}-{uuid.uuid4().hex[:10]}@example.com", f"pw-{uuid.uuid4()}"
            user = stub.CreateUser(
                pb.CreateUserRequest(
                    email=email, password=password, first_name="Crash", last_name="Test"
                ),
                timeout=10,
            ).user
            with ledger.lock:
                ledger.users[user.id] = (email, password)
            ledger.ack()
            opened = stub.CreateSession(
                pb.CreateSessionRequest(email=email, password=password), timeout=10
            )
            s = AckedSession(opened.session.id, user.id, opened.session_token, opened.update_token)
            with ledger.lock:
                ledger.sessions.append(s)
            mine.append(s)
            ledger.ack()
            for s in mine[-3:] if i % 2 else mine[-1:]:
                s.in_doubt = True
                done = stub.RefreshSession(
                    pb.RefreshSessionRequest(update_token=s.update_token), timeout=10
                )
                s.rotated.append((s.session_token, s.update_token))
                s.session_token, s.update_token = done.session_token, done.update_token
                s.in_doubt = False
                ledger.ack()
    except grpc.RpcError as error:  # the end of the stream; checked by the test
        with ledger.lock:
            ledger.endings.append(error.code())


def run_until_killed(server: ServeProcess, ledger: Ledger) -> None:
    """Runs the clients, SIGKILLs the server once enough calls were acknowledged."""
    channel = grpc.insecure_channel(server.address)
    stub = pb_grpc.AuthServiceStub(channel)
    start = ledger.acks
    threads = [threading.Thread(target=client, args=(stub, ledger, n)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: ledger.acks - start >= ACKS_BEFORE_KILL,
            timeout=120,
            interval=0.01,
            what="the clients to make progress",
        )
    finally:
        server.kill()
        for t in threads:
            t.join(timeout=60)
        channel.close()
    # Each client stops at its first failure, which must be the server going away.
    assert not any(t.is_alive() for t in threads)
    endings, ledger.endings = ledger.endings, []
    assert len(endings) == CLIENTS
    assert set(endings) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, endings


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def check_database(url: str, ledger: Ledger) -> None:
    """What the database holds, read directly: the acknowledged state, nothing half-made."""
    engine = create_engine(url)
    with engine.connect() as db:
        users = {str(u) for u in db.scalars(text("SELECT id FROM users"))}
        rows = db.execute(text("SELECT id, user_id, token_hash, update_token_hash FROM sessions"))
        sessions = {str(r.id): r for r in rows}
        orphans = db.scalar(
            text(
                "SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id "
                "WHERE u.id IS NULL"
            )
        )
        orphan_rotations = db.scalar(
            text(
                "SELECT count(*) FROM rotated_tokens r LEFT JOIN sessions s "
                "ON s.id = r.session_id WHERE s.id IS NULL"
            )
        )
        live_hashes = {bytes(r.token_hash) for r in sessions.values()}
        live_hashes |= {bytes(r.update_token_hash) for r in sessions.values()}
    engine.dispose()
    assert (orphans, orphan_rotations) == (0, 0)
    assert set(ledger.users) <= users, "an acknowledged sign-up was lost"
    for s in ledger.sessions:
        row = sessions.get(s.id)
        assert row is not None, "an acknowledged session was lost"
        assert str(row.user_id) == s.user_id
        if not s.in_doubt:
            assert bytes(row.token_hash) == digest(s.session_token)
            assert bytes(row.update_token_hash) == digest(s.update_token)
        for old_session, old_update in s.rotated:
            assert digest(old_session) not in live_hashes
            assert digest(old_update) not in live_hashes


def check_through_the_api(stub: pb_grpc.AuthServiceStub, ledger: Ledger) -> None:
    """The same, as a caller sees it after the restart."""
    for email, password in ledger.users.values():
        stub.CreateSession(pb.CreateSessionRequest(email=email, password=password), timeout=10)
    for s in ledger.sessions:
        if not s.in_doubt:
            got = stub.ValidateToken(
                pb.ValidateTokenRequest(session_token=s.session_token), timeout=10
            )
            assert got.session.id == s.id
        for old_session, _ in s.rotated:
            with pytest.raises(grpc.RpcError) as caught:
                stub.ValidateToken(pb.ValidateTokenRequest(session_token=old_session), timeout=10)
            assert failure(caught.value).reason == "TOKEN_INVALID"
    # Last, because presenting a rotated update token revokes its session (theft).
    for s in ledger.sessions:
        for _, old_update in s.rotated[-1:]:
            with pytest.raises(grpc.RpcError) as caught:
                stub.RefreshSession(pb.RefreshSessionRequest(update_token=old_update), timeout=10)
            assert failure(caught.value).reason in ("REFRESH_TOKEN_REUSED", "TOKEN_INVALID")


def test_kill_9_loses_nothing_acknowledged_and_leaves_nothing_half_written(pg_url, tmp_path):
    ledger = Ledger()
    for round_ in range(ROUNDS):
        run_until_killed(ServeProcess(pg_url, tmp_path / f"serve-{round_}.log"), ledger)
        check_database(pg_url, ledger)
    assert any(s.rotated for s in ledger.sessions), "no refresh was acknowledged"
    restarted = ServeProcess(pg_url, tmp_path / "serve-after.log")
    try:
        with grpc.insecure_channel(restarted.address) as channel:
            check_through_the_api(pb_grpc.AuthServiceStub(channel), ledger)
    finally:
        restarted.kill()
