"""Step-up proves the strongest factor the user has (issue 17): a user with a second
factor changes factors or the password only after re-proving a second factor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc_client import AuthClient
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.test_multi_factor import STEP, code, complete, enrol
from tests.flows.test_passkeys import ORIGIN, RP_ID, register
from tests.helpers import PASSWORD, fails, sign_in, sign_up
from tests.webauthn_authenticator import SoftAuthenticator

LATER = timedelta(minutes=16)  # past AUTHSVC_REAUTH_MAX_AGE (15 minutes)
NEW_PASSWORD = "a new and long passphrase"


@pytest.fixture
def stub(start_server: Any) -> Any:
    """A server where both TOTP and passkeys are configured."""
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    return start_server(secret_key=keys, webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,))[1]


def reauthenticate(stub: Any, token: str, **proof: Any) -> Any:
    request = pb.ReauthenticateSessionRequest(session_token=token, **proof)
    return stub.ReauthenticateSession(request).session


def methods(session: Any) -> set[int]:
    return {m.method for m in session.authentication_methods}


def totp_user(stub: Any, clock: Any) -> tuple[str, str, list[str]]:
    """A TOTP user's fully signed-in session, old enough that only a step-up counts."""
    sign_up(stub)
    secret, codes = enrol(stub, sign_in(stub).session_token, clock)
    token = complete(stub, sign_in(stub).challenge.challenge_token, totp_code=code(secret, clock))
    clock.advance(LATER)
    return token.session_token, secret, codes


def requires_second_factor(call: Any, request: Any) -> None:
    failed = fails(call, request)
    assert failed.reason == "REAUTHENTICATION_REQUIRED"
    assert "second factor" in failed.message


def change_password(token: str) -> pb.ChangePasswordRequest:
    return pb.ChangePasswordRequest(
        session_token=token, current_password=PASSWORD, new_password=NEW_PASSWORD
    )


def test_a_password_step_up_plants_no_passkey_on_a_totp_account(stub, clock) -> None:
    token, _, _ = totp_user(stub, clock)
    # The attack: a stolen session token and the password.
    reauthenticate(stub, token, password=PASSWORD)
    requires_second_factor(
        stub.StartPasskeyRegistration, pb.StartPasskeyRegistrationRequest(session_token=token)
    )
    requires_second_factor(
        stub.StartTotpEnrollment, pb.StartTotpEnrollmentRequest(session_token=token)
    )
    requires_second_factor(stub.ChangePassword, change_password(token))
    # The password is still the old one: nothing changed.
    assert sign_in(stub).HasField("challenge")


def test_a_totp_step_up_lets_a_totp_user_change_factors_and_password(stub, clock) -> None:
    token, secret, _ = totp_user(stub, clock)
    stepped = reauthenticate(stub, token, totp_code=code(secret, clock))
    assert pb.AUTHENTICATION_METHOD_TYPE_TOTP in methods(stepped)
    passkey = register(stub, token, SoftAuthenticator(ORIGIN))
    stub.ChangePassword(change_password(token))
    stub.RemovePasskey(pb.RemovePasskeyRequest(session_token=token, passkey_id=passkey.id))
    clock.advance(LATER)  # the TOTP step-up is too old now
    requires_second_factor(stub.ChangePassword, change_password(token))


def test_a_recovery_code_is_a_second_factor_step_up_and_is_spent(stub, clock) -> None:
    token, _, codes = totp_user(stub, clock)
    stepped = reauthenticate(stub, token, recovery_code=codes[0])
    assert pb.AUTHENTICATION_METHOD_TYPE_RECOVERY_CODE in methods(stepped)
    assert stepped.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    stub.ChangePassword(change_password(token))
    spent = pb.ReauthenticateSessionRequest(session_token=token, recovery_code=codes[0])
    assert fails(stub.ReauthenticateSession, spent).reason == "CODE_INVALID"
    wrong = pb.ReauthenticateSessionRequest(session_token=token, recovery_code="nope-nope")
    assert fails(stub.ReauthenticateSession, wrong).reason == "CODE_INVALID"


def test_removing_totp_is_proven_by_its_own_code(stub, clock) -> None:
    token, secret, _ = totp_user(stub, clock)
    reauthenticate(stub, token, password=PASSWORD)  # recent, but only a password
    clock.advance(STEP)
    stub.RemoveTotp(pb.RemoveTotpRequest(session_token=token, code=code(secret, clock)))
    assert sign_in(stub).session_token  # a password-only user again


def test_a_passkey_user_needs_the_passkey_not_the_password(stub, clock) -> None:
    sign_up(stub)
    token = sign_in(stub).session_token
    device = SoftAuthenticator(ORIGIN)
    passkey = register(stub, token, device)  # a password-only user: the password sufficed
    clock.advance(LATER)
    reauthenticate(stub, token, password=PASSWORD)
    remove = pb.RemovePasskeyRequest(session_token=token, passkey_id=passkey.id)
    requires_second_factor(stub.RemovePasskey, remove)
    requires_second_factor(
        stub.StartTotpEnrollment, pb.StartTotpEnrollmentRequest(session_token=token)
    )
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email="ada@example.com"))
    assertion = pb.PasskeyAssertion(
        challenge_token=started.challenge_token, assertion_json=device.get(started.options_json)
    )
    stepped = reauthenticate(stub, token, passkey_assertion=assertion)
    assert pb.AUTHENTICATION_METHOD_TYPE_PASSKEY in methods(stepped)
    stub.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=token))
    stub.RemovePasskey(remove)


def test_a_password_only_user_keeps_password_step_up(stub, clock) -> None:
    sign_up(stub)
    token = sign_in(stub).session_token
    clock.advance(LATER)
    stub.ChangePassword(change_password(token))  # the current password is the proof
    clock.advance(LATER)
    reauthenticate(stub, token, password=NEW_PASSWORD)
    stub.StartPasskeyRegistration(pb.StartPasskeyRegistrationRequest(session_token=token))
    stub.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=token))


def test_the_python_client_steps_up_with_a_recovery_code(start_server, clock) -> None:
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    server, stub = start_server(secret_key=keys)
    token, _, codes = totp_user(stub, clock)
    with AuthClient(f"127.0.0.1:{server.port}", timeout=10) as client:
        session = client.reauthenticate_session(token, recovery_code=codes[0])
        assert pb.AUTHENTICATION_METHOD_TYPE_RECOVERY_CODE in methods(session)
        user = client.create_user(
            "bob@example.com", PASSWORD, "Bob", "B", ip_address="203.0.113.8", user_agent="t/1"
        )
    assert user.email == "bob@example.com"
