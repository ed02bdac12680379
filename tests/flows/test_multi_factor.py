"""Multi-factor sign-in: what sessions prove, TOTP, recovery codes, challenges, step-up."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import grpc
import pyotp
import pytest
from cryptography.fernet import Fernet
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.storage.models import AuditRecord, RecoveryCode, TotpFactor
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import (
    NEW_PASSWORD,
    complete_reset,
    disable,
    enable,
    race_each,
    start_reset,
)
from tests.helpers import PASSWORD, fails, failure, sign_in, sign_up

PASSWORD_METHOD = pb.AUTHENTICATION_METHOD_TYPE_PASSWORD
TOTP_METHOD = pb.AUTHENTICATION_METHOD_TYPE_TOTP
RECOVERY_METHOD = pb.AUTHENTICATION_METHOD_TYPE_RECOVERY_CODE
STEP = timedelta(seconds=30)


@pytest.fixture
def keys() -> SecretKeys:
    return SecretKeys.parse(Fernet.generate_key().decode())


@pytest.fixture
def mfa(start_server: Any, keys: SecretKeys) -> Any:
    """A stub on a server with a secret key (TOTP enrolment allowed)."""
    return start_server(secret_key=keys)[1]


def code(secret: str, clock: Any) -> str:
    return pyotp.TOTP(secret).at(clock.now)


def enrol(stub: Any, token: str, clock: Any) -> tuple[str, list[str]]:
    """Enrols TOTP for the session's user; returns the secret and the recovery codes.

    Moves the clock to the next step, so the next code is not the one just used.
    """
    started = stub.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=token))
    confirmed = stub.ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(session_token=token, code=code(started.secret, clock))
    )
    clock.advance(STEP)
    return started.secret, list(confirmed.recovery_codes)


def enrolled_user(stub: Any, clock: Any) -> tuple[str, list[str]]:
    sign_up(stub)
    return enrol(stub, sign_in(stub).session_token, clock)


def complete(stub: Any, challenge_token: str, **factor: str) -> Any:
    return stub.CompleteSignIn(pb.CompleteSignInRequest(challenge_token=challenge_token, **factor))


def events(database: Any) -> list[str]:
    with database.transaction(writes=False) as db:
        return list(db.scalars(select(AuditRecord.event).order_by(AuditRecord.created_at)))


def retry_delay(error: grpc.RpcError) -> timedelta:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta()
    raise AssertionError("no RetryInfo")


def test_password_sign_in_records_the_password_at_aal1(stub, clock) -> None:
    sign_up(stub)
    done = sign_in(stub)
    for _ in range(2):  # the second answer comes from the validation cache
        seen = stub.ValidateToken(pb.ValidateTokenRequest(session_token=done.session_token))
        methods = seen.session.authentication_methods
        assert [m.method for m in methods] == [PASSWORD_METHOD]
        assert (
            methods[0].time.ToDatetime().timestamp() == clock.now.replace(tzinfo=None).timestamp()
        )
        assert seen.session.assurance_level == pb.ASSURANCE_LEVEL_AAL1
    assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL1
    assert not done.HasField("challenge")
    assert not done.second_factor_enrollment_required


def test_totp_enrolment_is_refused_without_a_secret_key(stub) -> None:
    sign_up(stub)
    token = sign_in(stub).session_token
    failed = fails(stub.StartTotpEnrollment, pb.StartTotpEnrollmentRequest(session_token=token))
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MFA_NOT_CONFIGURED",
    )


def test_enrolment_stores_the_secret_encrypted_and_the_codes_hashed(mfa, clock, database, keys):
    sign_up(mfa)
    token = sign_in(mfa).session_token
    started = mfa.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=token))
    assert started.otpauth_uri.startswith("otpauth://totp/")
    assert started.secret in started.otpauth_uri
    assert started.expire_time.ToDatetime() > clock.now.replace(tzinfo=None)
    confirmed = mfa.ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(session_token=token, code=code(started.secret, clock))
    )
    assert len(confirmed.recovery_codes) == 10 == len(set(confirmed.recovery_codes))
    with database.transaction(writes=False) as db:
        factor = db.scalars(select(TotpFactor)).one()
        hashes = list(db.scalars(select(RecoveryCode.code_hash)))
    assert started.secret not in factor.secret
    assert keys.unseal(factor.secret) == started.secret
    assert factor.confirmed_at is not None
    assert len(hashes) == 10
    assert not any(c.encode() in h for c in confirmed.recovery_codes for h in hashes)
    assert "TOTP_ENROLLED" in events(database)


def test_a_wrong_code_does_not_confirm_the_enrolment(mfa, clock) -> None:
    sign_up(mfa)
    token = sign_in(mfa).session_token
    started = mfa.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=token))
    wrong = pyotp.TOTP(started.secret).at(clock.now + 10 * STEP)
    failed = fails(
        mfa.ConfirmTotpEnrollment, pb.ConfirmTotpEnrollmentRequest(session_token=token, code=wrong)
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")
    assert not sign_in(mfa).HasField("challenge")  # not enrolled: still a plain sign-in


def test_a_user_with_totp_gets_a_challenge_then_an_aal2_session(mfa, clock, database) -> None:
    secret, _ = enrolled_user(mfa, clock)
    first = sign_in(mfa)
    assert not first.session_token and not first.update_token and not first.HasField("session")
    challenge = first.challenge
    assert challenge.challenge_token.startswith("asv_ct_")
    assert list(challenge.factors) == [pb.SECOND_FACTOR_TOTP, pb.SECOND_FACTOR_RECOVERY_CODE]
    assert challenge.expire_time.ToDatetime() == (clock.now + timedelta(minutes=5)).replace(
        tzinfo=None
    )
    done = complete(mfa, challenge.challenge_token, totp_code=code(secret, clock))
    assert done.session_token.startswith("asv_st_") and done.user.email == "ada@example.com"
    seen = mfa.ValidateToken(pb.ValidateTokenRequest(session_token=done.session_token))
    assert [m.method for m in seen.session.authentication_methods] == [
        PASSWORD_METHOD,
        TOTP_METHOD,
    ]
    assert seen.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    assert {"SECOND_FACTOR_CHALLENGED", "SIGN_IN_COMPLETED"} <= set(events(database))


def test_a_totp_code_is_accepted_once(mfa, clock, database) -> None:
    secret, _ = enrolled_user(mfa, clock)
    now_code = code(secret, clock)
    complete(mfa, sign_in(mfa).challenge.challenge_token, totp_code=now_code)
    clock.advance(timedelta(seconds=10))  # still within the window
    again = sign_in(mfa).challenge.challenge_token
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=again, totp_code=now_code)
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CODE_INVALID")
    assert "TOTP_REPLAYED" in events(database)
    earlier = pyotp.TOTP(secret).at(clock.now - STEP)  # an older step, still within drift
    challenge = sign_in(mfa).challenge.challenge_token
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=challenge, totp_code=earlier)
    )
    assert failed.reason == "CODE_INVALID"


def test_one_code_on_two_replicas_at_once_wins_once(start_server, keys, clock) -> None:
    first = start_server(secret_key=keys)[1]
    second = start_server(secret_key=keys)[1]
    secret, _ = enrolled_user(first, clock)
    totp_code = code(secret, clock)
    # Three tries: below the throttle's threshold, so each loser sees the replay itself.
    tokens = [sign_in(first).challenge.challenge_token for _ in range(3)]
    outcomes: list[str] = []

    def try_complete(stub: Any, challenge_token: str) -> None:
        try:
            complete(stub, challenge_token, totp_code=totp_code)
            outcomes.append("ok")
        except grpc.RpcError as error:
            outcomes.append(failure(error).reason)

    threads = [
        threading.Thread(target=try_complete, args=(stub, token))
        for stub, token in zip([first, second, first], tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["CODE_INVALID", "CODE_INVALID", "ok"]


def test_a_recovery_code_signs_in_once_and_is_audited(mfa, clock, database) -> None:
    _, codes = enrolled_user(mfa, clock)
    done = complete(mfa, sign_in(mfa).challenge.challenge_token, recovery_code=codes[0].upper())
    assert [m.method for m in done.session.authentication_methods] == [
        PASSWORD_METHOD,
        RECOVERY_METHOD,
    ]
    assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    assert "RECOVERY_CODE_USED" in events(database)
    again = sign_in(mfa).challenge.challenge_token
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=again, recovery_code=codes[0])
    )
    assert failed.reason == "CODE_INVALID"
    complete(mfa, again, recovery_code=codes[1])


def test_one_recovery_code_used_twice_at_once_wins_once(mfa, clock) -> None:
    _, codes = enrolled_user(mfa, clock)
    tokens = [sign_in(mfa).challenge.challenge_token for _ in range(3)]
    outcomes: list[str] = []

    def try_complete(token: str) -> None:
        try:
            complete(mfa, token, recovery_code=codes[0])
            outcomes.append("ok")
        except grpc.RpcError as error:
            outcomes.append(failure(error).reason)

    threads = [threading.Thread(target=try_complete, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["CODE_INVALID", "CODE_INVALID", "ok"]


def test_a_challenge_is_single_use_and_expires(mfa, clock) -> None:
    secret, codes = enrolled_user(mfa, clock)
    used = sign_in(mfa).challenge.challenge_token
    complete(mfa, used, totp_code=code(secret, clock))
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=used, recovery_code=codes[0])
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CHALLENGE_INVALID")
    late = sign_in(mfa).challenge.challenge_token
    clock.advance(timedelta(minutes=5))
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=late, recovery_code=codes[0])
    )
    assert failed.reason == "CHALLENGE_INVALID"
    forged = "asv_ct_" + "A" * 43
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=forged, totp_code="123456")
    )
    assert failed.reason == "CHALLENGE_INVALID"


def test_wrong_codes_are_throttled_per_user(mfa, clock, database) -> None:
    secret, _ = enrolled_user(mfa, clock)
    token = sign_in(mfa).challenge.challenge_token
    wrong = pyotp.TOTP(secret).at(clock.now + 10 * STEP)
    for _ in range(3):
        failed = fails(
            mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=token, totp_code=wrong)
        )
        assert failed.reason == "CODE_INVALID"
    with pytest.raises(grpc.RpcError) as caught:
        complete(mfa, token, totp_code=code(secret, clock))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_delay(caught.value) > timedelta(0)
    assert {"TOTP_FAILED", "TOTP_THROTTLED"} <= set(events(database))
    clock.advance(timedelta(seconds=2))
    complete(mfa, token, totp_code=code(secret, clock))  # the delay passed


def test_malformed_codes_name_their_field(mfa) -> None:
    failed = fails(
        mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token="x", totp_code="12ab56")
    )
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["totp_code"])
    failed = fails(mfa.CompleteSignIn, pb.CompleteSignInRequest(challenge_token=""))
    assert failed.fields == ["challenge_token", "totp_code"]
    failed = fails(mfa.ConfirmTotpEnrollment, pb.ConfirmTotpEnrollmentRequest(session_token="t"))
    assert failed.fields == ["code"]


def test_removing_totp_needs_a_code_and_ends_the_challenge(mfa, clock, database) -> None:
    secret, codes = enrolled_user(mfa, clock)
    done = complete(mfa, sign_in(mfa).challenge.challenge_token, recovery_code=codes[0])
    request = pb.RemoveTotpRequest(session_token=done.session_token, code=codes[0])
    assert fails(mfa.RemoveTotp, request).reason == "CODE_INVALID"  # spent already
    mfa.RemoveTotp(pb.RemoveTotpRequest(session_token=done.session_token, code=codes[1]))
    assert "TOTP_REMOVED" in events(database)
    assert sign_in(mfa).session_token  # no challenge any more
    with database.transaction(writes=False) as db:
        assert db.scalars(select(RecoveryCode)).all() == []
    failed = fails(
        mfa.RemoveTotp,
        pb.RemoveTotpRequest(session_token=done.session_token, code=code(secret, clock)),
    )
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "TOTP_NOT_ENROLLED",
    )


def test_sensitive_calls_need_a_recent_authentication(mfa, clock, database) -> None:
    sign_up(mfa)
    token = sign_in(mfa).session_token
    mfa.ValidateToken(pb.ValidateTokenRequest(session_token=token))  # cached from now on
    clock.advance(timedelta(minutes=15, seconds=1))
    request = pb.StartTotpEnrollmentRequest(session_token=token)
    failed = fails(mfa.StartTotpEnrollment, request)
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REAUTHENTICATION_REQUIRED",
    )
    stepped = mfa.ReauthenticateSession(
        pb.ReauthenticateSessionRequest(session_token=token, password=PASSWORD)
    )
    assert stepped.session.authentication_methods[-1].time.ToDatetime() == clock.now.replace(
        tzinfo=None
    )
    seen = mfa.ValidateToken(pb.ValidateTokenRequest(session_token=token))
    assert seen.session.authentication_methods == stepped.session.authentication_methods
    mfa.StartTotpEnrollment(request)
    clock.advance(timedelta(minutes=14))
    mfa.StartTotpEnrollment(request)  # still within the window
    assert "SESSION_REAUTHENTICATED" in events(database)


def test_step_up_with_a_wrong_password_fails_and_records_nothing(mfa) -> None:
    sign_up(mfa)
    token = sign_in(mfa).session_token
    request = pb.ReauthenticateSessionRequest(session_token=token, password="not the password")
    assert fails(mfa.ReauthenticateSession, request).reason == "INVALID_CREDENTIALS"
    seen = mfa.ValidateToken(pb.ValidateTokenRequest(session_token=token))
    assert len(seen.session.authentication_methods) == 1


def test_step_up_with_totp_raises_a_password_session_to_aal2(mfa, clock) -> None:
    sign_up(mfa)
    token = sign_in(mfa).session_token
    secret, _ = enrol(mfa, token, clock)
    stepped = mfa.ReauthenticateSession(
        pb.ReauthenticateSessionRequest(session_token=token, totp_code=code(secret, clock))
    )
    assert stepped.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    seen = mfa.ValidateToken(pb.ValidateTokenRequest(session_token=token))
    assert seen.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    replay = pb.ReauthenticateSessionRequest(session_token=token, totp_code=code(secret, clock))
    assert fails(mfa.ReauthenticateSession, replay).reason == "CODE_INVALID"


def test_require_mfa_flags_users_without_a_second_factor(start_server, keys, clock) -> None:
    stub = start_server(secret_key=keys, require_mfa=True)[1]
    sign_up(stub)
    done = sign_in(stub)
    assert done.second_factor_enrollment_required
    assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL1
    enrol(stub, done.session_token, clock)
    assert sign_in(stub).HasField("challenge")


def test_changing_the_password_keeps_the_second_factor(mfa, clock) -> None:
    secret, _ = enrolled_user(mfa, clock)
    done = complete(mfa, sign_in(mfa).challenge.challenge_token, totp_code=code(secret, clock))
    clock.advance(timedelta(minutes=30))
    change = pb.ChangePasswordRequest(
        session_token=done.session_token,
        current_password=PASSWORD,
        new_password="a new and long passphrase",
    )
    # The user has a second factor: the current password alone is no longer enough.
    assert fails(mfa.ChangePassword, change).reason == "REAUTHENTICATION_REQUIRED"
    mfa.ReauthenticateSession(
        pb.ReauthenticateSessionRequest(
            session_token=done.session_token, totp_code=code(secret, clock)
        )
    )
    mfa.ChangePassword(change)
    assert sign_in(mfa, password="a new and long passphrase").HasField("challenge")
    seen = mfa.ValidateToken(pb.ValidateTokenRequest(session_token=done.session_token))
    password_time = seen.session.authentication_methods[-1]
    assert password_time.method == PASSWORD_METHOD
    assert password_time.time.ToDatetime() == clock.now.replace(tzinfo=None)
    assert seen.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2


def test_the_purge_deletes_expired_challenges_and_enrolments(
    start_server, keys, clock, database
) -> None:
    from authsvc.storage.models import Challenge

    server, mfa = start_server(secret_key=keys)
    enrolled_user(mfa, clock)
    sign_up(mfa, "bob@example.com")
    bob = sign_in(mfa, "bob@example.com").session_token
    mfa.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=bob))
    sign_in(mfa)  # a challenge
    assert server.flows.housekeeping.purge().ceremonies == 0
    clock.advance(timedelta(minutes=6))
    assert server.flows.housekeeping.purge().ceremonies == 2
    with database.transaction(writes=False) as db:
        assert db.scalars(select(Challenge)).all() == []
        assert len(db.scalars(select(TotpFactor)).all()) == 1  # the confirmed one stays


def test_confirming_totp_proves_it_on_the_session(mfa, clock, database) -> None:
    sign_up(mfa)
    token = sign_in(mfa).session_token
    validate = pb.ValidateTokenRequest(session_token=token)
    assert [m.method for m in mfa.ValidateToken(validate).session.authentication_methods] == [
        PASSWORD_METHOD
    ]  # cached from now on
    clock.advance(timedelta(minutes=10))
    secret, _ = enrol(mfa, token, clock)
    confirmed_at = (clock.now - STEP).replace(tzinfo=None)  # enrol() moved one step on
    for _ in range(2):  # the second answer comes from the validation cache
        seen = mfa.ValidateToken(validate).session
        assert [(m.method, m.time.ToDatetime()) for m in seen.authentication_methods][1:] == [
            (TOTP_METHOD, confirmed_at)
        ]
        assert seen.authentication_methods[0].method == PASSWORD_METHOD
        assert seen.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    # The code proved TOTP recently: 20 minutes after the password, sensitive calls pass.
    clock.advance(timedelta(minutes=10))
    mfa.RemoveTotp(pb.RemoveTotpRequest(session_token=token, code=code(secret, clock)))
    assert "SESSION_REAUTHENTICATED" not in events(database)  # audited TOTP_ENROLLED alone


@pytest.mark.parametrize("how", ["ChangePassword", "SetPassword", "password reset"])
def test_a_new_password_ends_pending_sign_in_challenges(mfa, clock, how) -> None:
    user = sign_up(mfa)
    token = sign_in(mfa).session_token
    _, codes = enrol(mfa, token, clock)
    pending = sign_in(mfa).challenge.challenge_token
    if how == "ChangePassword":
        mfa.ChangePassword(
            pb.ChangePasswordRequest(
                session_token=token, current_password=PASSWORD, new_password=NEW_PASSWORD
            )
        )
    elif how == "SetPassword":
        mfa.SetPassword(pb.SetPasswordRequest(user_id=user.id, new_password=NEW_PASSWORD))
    else:
        complete_reset(mfa, start_reset(mfa).reset_token)
    request = pb.CompleteSignInRequest(challenge_token=pending, recovery_code=codes[0])
    failed = fails(mfa.CompleteSignIn, request)
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CHALLENGE_INVALID")
    # Nothing was spent; a sign-in with the new password completes as usual.
    fresh = sign_in(mfa, password=NEW_PASSWORD).challenge.challenge_token
    assert complete(mfa, fresh, recovery_code=codes[0]).session_token


def test_a_sign_in_of_another_device_leaves_a_pending_challenge(mfa, clock) -> None:
    _, codes = enrolled_user(mfa, clock)
    pending = sign_in(mfa).challenge.challenge_token
    complete(mfa, sign_in(mfa).challenge.challenge_token, recovery_code=codes[0])
    assert complete(mfa, pending, recovery_code=codes[1]).session_token


def test_a_challenge_of_a_disabled_or_deleted_user_is_refused(mfa, clock) -> None:
    user = sign_up(mfa)
    _, codes = enrol(mfa, sign_in(mfa).session_token, clock)
    pending = sign_in(mfa).challenge.challenge_token
    disable(mfa, user.id)
    request = pb.CompleteSignInRequest(challenge_token=pending, recovery_code=codes[0])
    failed = fails(mfa.CompleteSignIn, request)
    assert (failed.code, failed.reason) == (grpc.StatusCode.PERMISSION_DENIED, "USER_DISABLED")
    enable(mfa, user.id)
    assert complete(mfa, pending, recovery_code=codes[0]).session_token  # nothing was spent
    pending = sign_in(mfa).challenge.challenge_token
    mfa.DeleteUser(pb.DeleteUserRequest(id=user.id))
    request = pb.CompleteSignInRequest(challenge_token=pending, recovery_code=codes[1])
    assert fails(mfa.CompleteSignIn, request).reason == "CHALLENGE_INVALID"


def test_completing_while_the_password_is_set_leaves_no_live_session(mfa, clock) -> None:
    user = sign_up(mfa)
    _, codes = enrol(mfa, sign_in(mfa).session_token, clock)
    # Three completions: below the code throttle's threshold, so none is refused by it.
    pending = [sign_in(mfa).challenge.challenge_token for _ in range(3)]
    calls: list[Any] = [
        lambda t=t, c=c: complete(mfa, t, recovery_code=c)
        for t, c in zip(pending, codes, strict=False)
    ]
    calls.append(
        lambda: mfa.SetPassword(pb.SetPasswordRequest(user_id=user.id, new_password=NEW_PASSWORD))
    )
    results = race_each(calls)
    assert sum(isinstance(r, pb.SetPasswordResponse) for r in results) == 1
    for r in results:
        if isinstance(r, pb.CompleteSignInResponse):  # completed first: SetPassword ended it
            request = pb.ValidateTokenRequest(session_token=r.session_token)
            assert fails(mfa.ValidateToken, request).reason == "TOKEN_INVALID"
        else:
            assert isinstance(r, pb.SetPasswordResponse) or r == "CHALLENGE_INVALID"
