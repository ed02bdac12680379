"""Passkeys: registration, sign-in (AAL2 alone), cloned authenticators, step-up, removal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from authsvc.storage.models import AuditRecord, Passkey
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import fails, failure, sign_in, sign_up
from tests.webauthn_authenticator import SoftAuthenticator

RP_ID = "auth.example.com"
ORIGIN = "https://auth.example.com"


@pytest.fixture
def stub(start_server: Any) -> Any:
    return start_server(webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,))[1]


def register(stub: Any, token: str, device: SoftAuthenticator, name: str = "laptop") -> Any:
    started = stub.StartPasskeyRegistration(pb.StartPasskeyRegistrationRequest(session_token=token))
    return stub.FinishPasskeyRegistration(
        pb.FinishPasskeyRegistrationRequest(
            challenge_token=started.challenge_token,
            credential_json=device.create(started.options_json),
            name=name,
        )
    ).passkey


def passkey_sign_in(stub: Any, device: SoftAuthenticator, email: str = "", **kw: Any) -> Any:
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email=email))
    return stub.FinishPasskeySignIn(
        pb.FinishPasskeySignInRequest(
            challenge_token=started.challenge_token,
            assertion_json=device.get(started.options_json, **kw),
        )
    )


def events(database: Any) -> list[str]:
    with database.transaction(writes=False) as db:
        return list(db.scalars(select(AuditRecord.event)))


def test_a_registered_passkey_signs_in_alone_at_aal2(stub, database) -> None:
    sign_up(stub)
    token = sign_in(stub).session_token
    device = SoftAuthenticator(ORIGIN)
    passkey = register(stub, token, device)
    assert passkey.name == "laptop" and passkey.id
    listed = stub.ListPasskeys(pb.ListPasskeysRequest(session_token=token)).passkeys
    assert [p.id for p in listed] == [passkey.id]
    for email in ("ada@example.com", ""):  # by email, and discoverable
        done = passkey_sign_in(stub, device, email)
        assert done.session_token.startswith("asv_st_") and done.user.email == "ada@example.com"
        assert [m.method for m in done.session.authentication_methods] == [
            pb.AUTHENTICATION_METHOD_TYPE_PASSKEY
        ]
        assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    assert {"PASSKEY_REGISTERED", "PASSKEY_SIGN_IN_SUCCEEDED"} <= set(events(database))


def test_a_counter_that_goes_backwards_is_refused_and_audited(stub, database) -> None:
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    passkey_sign_in(stub, device, sign_count=5)
    with pytest.raises(grpc.RpcError) as caught:
        passkey_sign_in(stub, device, sign_count=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert failure(caught.value).reason == "CLONED_AUTHENTICATOR"
    assert "PASSKEY_COUNTER_REGRESSED" in events(database)
    with database.transaction(writes=False) as db:
        assert db.scalars(select(Passkey.sign_count)).one() == 5


def test_an_unknown_or_forged_passkey_is_refused(stub, database) -> None:
    sign_up(stub)
    register(stub, sign_in(stub).session_token, SoftAuthenticator(ORIGIN))
    stranger = SoftAuthenticator(ORIGIN)
    stranger.rp_id = RP_ID
    with pytest.raises(grpc.RpcError) as caught:
        passkey_sign_in(stub, stranger)
    assert failure(caught.value).reason == "PASSKEY_INVALID"
    assert "PASSKEY_SIGN_IN_FAILED" in events(database)


def test_a_passkey_from_another_origin_does_not_register(stub) -> None:
    sign_up(stub)
    token = sign_in(stub).session_token
    started = stub.StartPasskeyRegistration(pb.StartPasskeyRegistrationRequest(session_token=token))
    request = pb.FinishPasskeyRegistrationRequest(
        challenge_token=started.challenge_token,
        credential_json=SoftAuthenticator("https://evil.example.net").create(started.options_json),
    )
    assert fails(stub.FinishPasskeyRegistration, request).reason == "PASSKEY_INVALID"


def test_a_ceremony_challenge_is_single_use(stub) -> None:
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest())
    request = pb.FinishPasskeySignInRequest(
        challenge_token=started.challenge_token, assertion_json=device.get(started.options_json)
    )
    stub.FinishPasskeySignIn(request)
    assert fails(stub.FinishPasskeySignIn, request).reason == "CHALLENGE_INVALID"


def test_passkeys_are_refused_without_a_relying_party(start_server) -> None:
    plain = start_server()[1]
    failed = fails(plain.StartPasskeySignIn, pb.StartPasskeySignInRequest())
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MFA_NOT_CONFIGURED",
    )


def test_step_up_with_a_passkey_and_removal_needs_a_recent_one(stub, clock) -> None:
    sign_up(stub)
    token = sign_in(stub).session_token
    device = SoftAuthenticator(ORIGIN)
    passkey = register(stub, token, device)
    clock.advance(timedelta(minutes=16))
    remove = pb.RemovePasskeyRequest(session_token=token, passkey_id=passkey.id)
    assert fails(stub.RemovePasskey, remove).reason == "REAUTHENTICATION_REQUIRED"
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email="ada@example.com"))
    stepped = stub.ReauthenticateSession(
        pb.ReauthenticateSessionRequest(
            session_token=token,
            passkey_assertion=pb.PasskeyAssertion(
                challenge_token=started.challenge_token,
                assertion_json=device.get(started.options_json),
            ),
        )
    )
    assert stepped.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    stub.RemovePasskey(remove)
    assert fails(stub.RemovePasskey, remove).reason == "PASSKEY_NOT_FOUND"
    assert not stub.ListPasskeys(pb.ListPasskeysRequest(session_token=token)).passkeys


def test_another_users_passkey_does_not_step_up_a_session(stub) -> None:
    sign_up(stub)
    sign_up(stub, "bob@example.com")
    bobs = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub, "bob@example.com").session_token, bobs)
    token = sign_in(stub).session_token
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest())
    request = pb.ReauthenticateSessionRequest(
        session_token=token,
        passkey_assertion=pb.PasskeyAssertion(
            challenge_token=started.challenge_token, assertion_json=bobs.get(started.options_json)
        ),
    )
    assert fails(stub.ReauthenticateSession, request).reason == "PASSKEY_INVALID"


def test_a_password_sign_in_of_a_passkey_user_is_completed_with_the_passkey(stub, database):
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    first = sign_in(stub)
    assert not first.session_token
    assert list(first.challenge.factors) == [pb.SECOND_FACTOR_PASSKEY]
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email="ada@example.com"))
    done = stub.CompleteSignIn(
        pb.CompleteSignInRequest(
            challenge_token=first.challenge.challenge_token,
            passkey_assertion=pb.PasskeyAssertion(
                challenge_token=started.challenge_token,
                assertion_json=device.get(started.options_json),
            ),
        )
    )
    assert [m.method for m in done.session.authentication_methods] == [
        pb.AUTHENTICATION_METHOD_TYPE_PASSWORD,
        pb.AUTHENTICATION_METHOD_TYPE_PASSKEY,
    ]
    assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
    assert "SIGN_IN_COMPLETED" in events(database)


def test_another_users_passkey_does_not_complete_a_sign_in(stub) -> None:
    sign_up(stub)
    sign_up(stub, "bob@example.com")
    register(stub, sign_in(stub).session_token, SoftAuthenticator(ORIGIN))
    bobs = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub, "bob@example.com").session_token, bobs)
    challenge = sign_in(stub).challenge.challenge_token
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest())
    request = pb.CompleteSignInRequest(
        challenge_token=challenge,
        passkey_assertion=pb.PasskeyAssertion(
            challenge_token=started.challenge_token, assertion_json=bobs.get(started.options_json)
        ),
    )
    assert fails(stub.CompleteSignIn, request).reason == "PASSKEY_INVALID"


def test_a_disabled_user_gets_no_session_from_a_passkey(stub) -> None:
    user = sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    pending = sign_in(stub).challenge.challenge_token
    stub.DisableUser(pb.DisableUserRequest(id=user.id))
    with pytest.raises(grpc.RpcError) as caught:
        passkey_sign_in(stub, device, "ada@example.com")
    assert failure(caught.value).reason == "USER_DISABLED"
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email="ada@example.com"))
    request = pb.CompleteSignInRequest(
        challenge_token=pending,
        passkey_assertion=pb.PasskeyAssertion(
            challenge_token=started.challenge_token,
            assertion_json=device.get(started.options_json),
        ),
    )
    assert fails(stub.CompleteSignIn, request).reason == "USER_DISABLED"
    stub.EnableUser(pb.EnableUserRequest(id=user.id))
    listed = stub.ListSessions(pb.ListSessionsRequest(user_id=user.id)).sessions
    assert list(listed) == []  # no session slipped past the disabling
