"""Expired sessions are deleted in batches: ``authsvc purge`` and the timer inside serve."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from authsvc.runtime import cli
from authsvc.storage.models import RotatedToken, Session, UserToken
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import sign_in, sign_up, wait_until


def count(database, model) -> int:
    with database.transaction(writes=False) as db:
        return db.scalar(select(func.count()).select_from(model))


def sign_in_and_refresh(stub, times: int) -> list[pb.CreateSessionResponse]:
    made = []
    for _ in range(times):
        s = sign_in(stub)
        stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token), timeout=10)
        made.append(s)
    return made


def test_purge_deletes_expired_sessions_in_batches_and_keeps_live_ones(
    start_server, clock, database
):
    server, stub = start_server(
        refresh_ttl=timedelta(days=1), session_ttl=timedelta(hours=1), purge_batch_size=2
    )
    sign_up(stub)
    sign_in_and_refresh(stub, 5)  # 5 sessions, 5 rotated update tokens
    clock.advance(timedelta(days=1))
    live = sign_in(stub)
    assert server.flows.housekeeping.purge().sessions == 5
    assert count(database, Session) == 1
    assert count(database, RotatedToken) == 0  # cascaded with their sessions
    stub.ValidateToken(pb.ValidateTokenRequest(session_token=live.session_token), timeout=10)
    assert server.flows.housekeeping.purge().sessions == 0


def test_a_session_is_kept_until_its_refresh_expiry_has_passed(start_server, clock, database):
    server, stub = start_server(refresh_ttl=timedelta(days=1), session_ttl=timedelta(hours=1))
    sign_up(stub)
    s = sign_in(stub)
    clock.advance(timedelta(hours=23))  # session token expired, update token still good
    assert server.flows.housekeeping.purge().sessions == 0
    stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token), timeout=10)
    clock.advance(timedelta(days=1))
    assert server.flows.housekeeping.purge().sessions == 1


def test_absolute_lifetime_caps_what_is_kept(start_server, clock, database):
    server, stub = start_server(
        refresh_ttl=timedelta(days=7),
        session_ttl=timedelta(hours=1),
        session_max_age=timedelta(days=2),
    )
    sign_up(stub)
    sign_in(stub)
    clock.advance(timedelta(days=2))
    assert server.flows.housekeeping.purge().sessions == 1
    assert count(database, Session) == 0


def test_purge_command_deletes_expired_sessions(start_server, clock, database, db_url, capsys):
    _, stub = start_server(refresh_ttl=timedelta(days=1), session_ttl=timedelta(hours=1))
    sign_up(stub)
    clock.advance(timedelta(days=-30))  # sessions made a month ago: long expired now
    sign_in_and_refresh(stub, 3)
    clock.advance(timedelta(days=30))
    sign_in(stub)
    status = cli.main(["purge", "--database-url", db_url, "--batch-size", "2"])
    assert status == 0
    assert "purged 3 expired sessions" in capsys.readouterr().out
    assert count(database, Session) == 1
    assert count(database, RotatedToken) == 0


def test_serve_purges_on_a_timer(start_server, clock, database):
    _, stub = start_server(refresh_ttl=timedelta(days=1), purge_interval=timedelta(milliseconds=50))
    sign_up(stub)
    sign_in_and_refresh(stub, 2)
    clock.advance(timedelta(days=1))
    wait_until(lambda: count(database, Session) == 0, what="the timer to purge")


def test_table_stays_bounded_under_churn(start_server, clock, database):
    """Sessions keep being created and abandoned; with purging the table plateaus.

    Each simulated minute 4 devices sign in (and refresh once) and never come back;
    update tokens live 5 minutes. Without purging the table would hold every session
    ever made; with a purge each minute it never exceeds the sessions of the last
    5 minutes plus the current minute's.
    """
    server, stub = start_server(
        session_ttl=timedelta(minutes=1), refresh_ttl=timedelta(minutes=5), purge_batch_size=3
    )
    sign_up(stub)
    per_minute, minutes, window = 4, 30, 5
    sizes = []
    for _ in range(minutes):
        sign_in_and_refresh(stub, per_minute)
        clock.advance(timedelta(minutes=1))
        server.flows.housekeeping.purge().sessions
        sizes.append((count(database, Session), count(database, RotatedToken)))
    created = per_minute * minutes
    bound = per_minute * (window + 1)
    assert max(s for s, _ in sizes) <= bound < created
    assert max(r for _, r in sizes) <= bound  # rotated tokens go with their sessions
    assert sizes[-1][0] == sizes[-10][0]  # a plateau, not a slow climb


def test_purge_deletes_expired_reset_and_verification_tokens(start_server, clock, database):
    server, stub = start_server(purge_batch_size=1)
    user = sign_up(stub)
    stub.StartPasswordReset(pb.StartPasswordResetRequest(email=user.email), timeout=10)
    stub.StartEmailVerification(pb.StartEmailVerificationRequest(user_id=user.id), timeout=10)
    clock.advance(timedelta(hours=1))  # the reset token (1 h) expires, not the other (24 h)
    assert server.flows.housekeeping.purge().user_tokens == 1
    assert count(database, UserToken) == 1
    clock.advance(timedelta(days=1))
    assert server.flows.housekeeping.purge().user_tokens == 1
    assert count(database, UserToken) == 0
