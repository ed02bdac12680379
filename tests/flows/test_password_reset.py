"""Password reset: StartPasswordReset and CompletePasswordReset, as a caller observes them."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import grpc
import pytest

from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import (
    NEW_PASSWORD,
    complete_reset,
    disable,
    events,
    race,
    start_reset,
    token_rows,
)
from tests.helpers import PASSWORD, fails, sign_in, sign_up

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def validate_reason(stub, token) -> str:
    return fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=token)).reason


def test_reset_sets_the_password_and_ends_every_session(stub, database):
    user = sign_up(stub)
    a, b = sign_in(stub), sign_in(stub)
    started = start_reset(stub, "ADA@example.com")
    assert started.reset_token.startswith("asv_rt_")
    done = complete_reset(stub, started.reset_token)
    assert done.user.id == user.id
    for s in (a, b):
        assert validate_reason(stub, s.session_token) == "TOKEN_INVALID"
    assert (
        fails(
            stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)
        ).reason
        == "INVALID_CREDENTIALS"
    )
    assert sign_in(stub, password=NEW_PASSWORD).user.id == user.id
    assert events(database, "PASSWORD_RESET_COMPLETED") == 1


def test_reset_marks_the_email_verified(stub, clock):
    assert not sign_up(stub).email_verified
    done = complete_reset(stub, start_reset(stub).reset_token)
    assert done.user.email_verified
    assert done.user.email_verify_time.ToDatetime().replace(tzinfo=clock.now.tzinfo) == clock.now
    got = stub.GetUser(pb.GetUserRequest(id=done.user.id), timeout=10).user
    assert got.email_verified and got.state == pb.USER_STATE_ACTIVE


def test_reset_token_is_stored_only_as_its_sha256(stub, database):
    sign_up(stub)
    token = start_reset(stub).reset_token
    (row,) = token_rows(database)
    assert row.kind == "reset"
    assert row.token_hash == hashlib.sha256(token.encode()).digest()


def test_reset_token_works_once(stub):
    sign_up(stub)
    token = start_reset(stub).reset_token
    complete_reset(stub, token)
    again = fails(
        stub.CompletePasswordReset,
        pb.CompletePasswordResetRequest(reset_token=token, new_password="yet another passphrase"),
    )
    assert (again.code, again.reason) == (UNAUTHENTICATED, "TOKEN_INVALID")


def test_concurrent_completions_exactly_one_wins(stub, database):
    user = sign_up(stub)
    token = start_reset(stub).reset_token
    results = race(lambda: complete_reset(stub, token))
    winners = [r for r in results if not isinstance(r, str)]
    assert len(winners) == 1 and winners[0].user.id == user.id
    assert set(r for r in results if isinstance(r, str)) == {"TOKEN_INVALID"}
    assert events(database, "PASSWORD_RESET_COMPLETED") == 1
    assert token_rows(database) == []


def test_reset_token_expires_after_the_reset_ttl(start_server, clock):
    _, stub = start_server(reset_ttl=timedelta(minutes=30))
    sign_up(stub)
    started = start_reset(stub)
    assert started.expire_time.ToDatetime().replace(tzinfo=clock.now.tzinfo) == (
        clock.now + timedelta(minutes=30)
    )
    clock.advance(timedelta(minutes=30))
    late = fails(
        stub.CompletePasswordReset,
        pb.CompletePasswordResetRequest(reset_token=started.reset_token, new_password=NEW_PASSWORD),
    )
    assert (late.code, late.reason) == (UNAUTHENTICATED, "TOKEN_EXPIRED")


def test_default_reset_ttl_is_one_hour(stub, clock):
    sign_up(stub)
    started = start_reset(stub)
    expiry = started.expire_time.ToDatetime().replace(tzinfo=clock.now.tzinfo)
    assert expiry == clock.now + timedelta(hours=1)


def test_starting_again_ends_the_earlier_token(stub, database):
    sign_up(stub)
    first = start_reset(stub).reset_token
    second = start_reset(stub).reset_token
    assert (
        fails(
            stub.CompletePasswordReset,
            pb.CompletePasswordResetRequest(reset_token=first, new_password=NEW_PASSWORD),
        ).reason
        == "TOKEN_INVALID"
    )
    assert len(token_rows(database)) == 1
    complete_reset(stub, second)


@pytest.mark.parametrize("token", ["asv_rt_" + "A" * 43, "asv_st_" + "A" * 43, "garbage"])
def test_unknown_or_malformed_token_is_invalid_and_audited(stub, database, token):
    got = fails(
        stub.CompletePasswordReset,
        pb.CompletePasswordResetRequest(reset_token=token, new_password=NEW_PASSWORD),
    )
    assert (got.code, got.reason) == (UNAUTHENTICATED, "TOKEN_INVALID")
    assert events(database, "PASSWORD_RESET_FAILED") == 1


def test_unknown_email_answers_alike_and_records_no_token(stub, database):
    sign_up(stub)
    unknown = start_reset(stub, "nobody@example.com")
    assert unknown.reset_token == ""
    assert unknown.HasField("expire_time")
    assert token_rows(database) == []
    assert events(database, "PASSWORD_RESET_STARTED") == 1


def test_disabled_account_gets_an_empty_token(stub, database):
    user = sign_up(stub)
    disable(stub, user.id)
    assert start_reset(stub).reset_token == ""
    assert token_rows(database) == []


def test_disabling_ends_an_unused_reset_token(stub):
    user = sign_up(stub)
    token = start_reset(stub).reset_token
    disable(stub, user.id)
    got = fails(
        stub.CompletePasswordReset,
        pb.CompletePasswordResetRequest(reset_token=token, new_password=NEW_PASSWORD),
    )
    assert got.reason == "TOKEN_INVALID"


def test_changing_the_password_ends_an_unused_reset_token(stub, database):
    # As SetPassword does: a reset asked for before the password changed must not undo
    # the change (whoever reads the mailbox could otherwise set a password of their own).
    sign_up(stub)
    session = sign_in(stub)
    token = start_reset(stub).reset_token
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=session.session_token,
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
        ),
        timeout=10,
    )
    got = fails(
        stub.CompletePasswordReset,
        pb.CompletePasswordResetRequest(reset_token=token, new_password="yet another passphrase"),
    )
    assert got.reason == "TOKEN_INVALID"
    assert token_rows(database) == []
    assert sign_in(stub, password=NEW_PASSWORD).session_token


def test_starting_resets_is_throttled_per_email(start_server, database):
    _, stub = start_server(reset_start_limit=3)
    sign_up(stub)
    for _ in range(3):
        start_reset(stub)
    got = fails(stub.StartPasswordReset, pb.StartPasswordResetRequest(email="ada@example.com"))
    assert (got.code, got.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS")
    assert events(database, "PASSWORD_RESET_THROTTLED") == 1
    # Unknown emails are throttled alike: throttling tells nothing about accounts.
    for _ in range(3):
        start_reset(stub, "nobody@example.com")
    assert (
        fails(
            stub.StartPasswordReset, pb.StartPasswordResetRequest(email="nobody@example.com")
        ).reason
        == "TOO_MANY_ATTEMPTS"
    )


def test_starting_resets_is_throttled_per_ip_across_emails(start_server):
    _, stub = start_server(reset_start_limit=1)  # 4 per IP
    for n in range(4):
        start_reset(stub, f"user{n}@example.com", ip_address="203.0.113.9")
    got = fails(
        stub.StartPasswordReset,
        pb.StartPasswordResetRequest(email="other@example.com", ip_address="203.0.113.9"),
    )
    assert got.reason == "TOO_MANY_ATTEMPTS"
    start_reset(stub, "other@example.com", ip_address="203.0.113.10")


def test_wrong_reset_tokens_count_against_the_ip(start_server, database):
    _, stub = start_server(throttle_ip_limit=3)
    sign_up(stub)
    bad = "asv_rt_" + "B" * 43
    wrong = pb.CompletePasswordResetRequest(
        reset_token=bad, new_password=NEW_PASSWORD, ip_address="198.51.100.7"
    )
    for _ in range(3):
        assert fails(stub.CompletePasswordReset, wrong).reason == "TOKEN_INVALID"
    got = fails(stub.CompletePasswordReset, wrong)
    assert (got.code, got.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS")
    assert events(database, "PASSWORD_RESET_THROTTLED") == 1
    # The address's failures are failures of sign-in too (one budget per address)...
    refused = fails(
        stub.CreateSession,
        pb.CreateSessionRequest(
            email="ada@example.com", password=PASSWORD, ip_address="198.51.100.7"
        ),
    )
    assert refused.reason == "TOO_MANY_ATTEMPTS"
    # ...but a live 256-bit token is never throttled: nobody guesses one, so nobody's
    # wrong tokens (not even from the same address) make it fail.
    token = start_reset(stub).reset_token
    complete_reset(stub, token, ip_address="198.51.100.7")
    assert events(database, "PASSWORD_RESET_COMPLETED") == 1


def test_new_password_is_under_the_policy(stub):
    sign_up(stub)
    token = start_reset(stub).reset_token
    got = fails(
        stub.CompletePasswordReset,
        pb.CompletePasswordResetRequest(reset_token=token, new_password="short"),
    )
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["new_password"])
    complete_reset(stub, token)  # a refused request does not use the token


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.StartPasswordResetRequest(), ["email"]),
        (
            pb.StartPasswordResetRequest(email="not an email", ip_address="x"),
            ["email", "ip_address"],
        ),
        (pb.StartPasswordResetRequest(email="a@example.com", user_agent="a\x00b"), ["user_agent"]),
        (pb.CompletePasswordResetRequest(), ["reset_token", "new_password"]),
        (
            pb.CompletePasswordResetRequest(
                reset_token="t", new_password=NEW_PASSWORD, ip_address="999.1.1.1"
            ),
            ["ip_address"],
        ),
    ],
)
def test_password_reset_requests_name_each_malformed_field(stub, request_, fields):
    method = type(request_).__name__.removesuffix("Request")
    got = fails(getattr(stub, method), request_)
    assert (got.code, got.reason, got.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        fields,
    )
