"""Passkeys: registration, sign-in (AAL2 alone), cloned authenticators, step-up, removal."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.storage.models import AuditRecord, Challenge, Passkey
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.conftest import TABLES
from tests.helpers import fails, failure, sign_in, sign_up
from tests.webauthn_authenticator import SoftAuthenticator

RP_ID = "auth.example.com"
ORIGIN = "https://auth.example.com"


# Passkey sign-in seals its challenges with AUTHSVC_SECRET_KEY.
KEYS = SecretKeys.parse(Fernet.generate_key().decode())


@pytest.fixture
def stub(start_server: Any) -> Any:
    return start_server(webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,), secret_key=KEYS)[1]


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


# Unauthenticated starts store nothing and tell nothing (issue 17).


def row_counts(database: Any) -> dict[str, int]:
    with database.transaction(writes=False) as db:
        return {t: db.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}


def test_passkey_sign_in_starts_store_nothing(stub, database) -> None:
    sign_up(stub)
    register(stub, sign_in(stub).session_token, SoftAuthenticator(ORIGIN))
    before = row_counts(database)
    for n in range(200):
        email = ("ada@example.com", f"stranger{n}@example.com", "")[n % 3]
        stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email=email))
    assert row_counts(database) == before


def shape(started: Any) -> tuple[int, dict[str, Any]]:
    """What a StartPasskeySignIn answer shows, but for its random challenge."""
    options = json.loads(started.options_json)
    assert len(options.pop("challenge")) == 43  # 32 random bytes, every time
    return len(started.challenge_token), options


def test_passkey_sign_in_start_answers_alike_whoever_the_email_names(stub) -> None:
    sign_up(stub)  # ada: with a passkey
    register(stub, sign_in(stub).session_token, SoftAuthenticator(ORIGIN))
    sign_up(stub, "bob@example.com")  # bob: without; eve: no account at all
    answers = [
        shape(stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email=email)))
        for email in ("ada@example.com", "bob@example.com", "eve@example.com", "eve@example.com")
    ]
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][1]["allowCredentials"] == []  # empty: any discoverable passkey


def test_a_sealed_challenge_signs_in_once_and_only_once(stub, database) -> None:
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email="ada@example.com"))
    assert started.challenge_token.startswith("asv_pc_")
    first = pb.FinishPasskeySignInRequest(
        challenge_token=started.challenge_token, assertion_json=device.get(started.options_json)
    )
    session_token = stub.FinishPasskeySignIn(first).session_token
    again = pb.FinishPasskeySignInRequest(
        challenge_token=started.challenge_token, assertion_json=device.get(started.options_json)
    )
    assert fails(stub.FinishPasskeySignIn, again).reason == "CHALLENGE_INVALID"
    step_up = pb.ReauthenticateSessionRequest(
        session_token=session_token,
        passkey_assertion=pb.PasskeyAssertion(
            challenge_token=started.challenge_token,
            assertion_json=device.get(started.options_json),
        ),
    )
    assert fails(stub.ReauthenticateSession, step_up).reason == "CHALLENGE_INVALID"
    with database.transaction(writes=False) as db:  # the one row: this use, until it expires
        used = db.scalars(select(Challenge.kind)).all()
    assert used == ["passkey_sign_in_used"]


def test_an_expired_sealed_challenge_is_refused(stub, clock) -> None:
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest())
    clock.advance(timedelta(minutes=5))  # AUTHSVC_CHALLENGE_TTL
    request = pb.FinishPasskeySignInRequest(
        challenge_token=started.challenge_token, assertion_json=device.get(started.options_json)
    )
    assert fails(stub.FinishPasskeySignIn, request).reason == "CHALLENGE_INVALID"


def test_a_forged_or_altered_sealed_challenge_is_refused(stub) -> None:
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest())
    token = started.challenge_token
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    other_key = SecretKeys.parse(Fernet.generate_key().decode())
    json_challenge = json.loads(started.options_json)["challenge"]
    payload = {"k": "passkey_sign_in", "c": json_challenge + "=", "e": "", "x": 4e9}
    forged = "asv_pc_" + other_key.seal(json.dumps(payload))
    for bad in (altered, forged, "asv_pc_" + "A" * 200, "asv_ct_" + "A" * 43, token + "\x00"):
        request = pb.FinishPasskeySignInRequest(
            challenge_token=bad, assertion_json=device.get(started.options_json)
        )
        assert fails(stub.FinishPasskeySignIn, request).reason == "CHALLENGE_INVALID", bad[:12]


def test_a_challenge_started_for_one_email_takes_no_other_accounts_passkey(stub) -> None:
    sign_up(stub)
    sign_up(stub, "bob@example.com")
    bobs = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub, "bob@example.com").session_token, bobs)
    for email in ("ada@example.com", "eve@example.com"):  # another account; no account
        with pytest.raises(grpc.RpcError) as caught:
            passkey_sign_in(stub, bobs, email)
        assert failure(caught.value).reason == "PASSKEY_INVALID"
    assert passkey_sign_in(stub, bobs, "bob@example.com").user.email == "bob@example.com"


def test_passkey_sign_in_needs_a_secret_key(start_server) -> None:
    keyless = start_server(webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,))[1]
    failed = fails(keyless.StartPasskeySignIn, pb.StartPasskeySignInRequest())
    assert (failed.code, failed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MFA_NOT_CONFIGURED",
    )


def test_registration_asks_for_a_discoverable_passkey(stub) -> None:
    # A passkey sign-in names no credentials: only a discoverable passkey can answer it.
    sign_up(stub)
    token = sign_in(stub).session_token
    started = stub.StartPasskeyRegistration(pb.StartPasskeyRegistrationRequest(session_token=token))
    selection = json.loads(started.options_json)["authenticatorSelection"]
    assert (selection["residentKey"], selection["requireResidentKey"]) == ("required", True)


def test_the_record_of_a_used_challenge_is_purged_when_the_challenge_expires(
    start_server, clock, database
) -> None:
    server, stub = start_server(webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,), secret_key=KEYS)
    sign_up(stub)
    device = SoftAuthenticator(ORIGIN)
    register(stub, sign_in(stub).session_token, device)
    passkey_sign_in(stub, device)
    assert server.flows.housekeeping.purge().ceremonies == 0  # kept while the challenge lives
    clock.advance(timedelta(minutes=5))
    assert server.flows.housekeeping.purge().ceremonies == 1
    with database.transaction(writes=False) as db:
        assert db.scalars(select(Challenge.kind)).all() == []
