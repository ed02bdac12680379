"""Which flows write which account events, with which data and actor (the rest of the
types; sign-up, sessions and the lifecycle are in tests/edge/test_events.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from google.protobuf.json_format import MessageToDict
from werkzeug.security import generate_password_hash

from authsvc.edge.caller_policy import load_policy
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import complete_reset, start_reset, start_verification, verify
from tests.flows.test_multi_factor import complete, enrol
from tests.flows.test_passkeys import ORIGIN, RP_ID, register
from tests.helpers import sign_in, sign_up
from tests.webauthn_authenticator import SoftAuthenticator


def listed(stub: Any) -> list[Any]:
    return list(stub.ListEvents(pb.ListEventsRequest(page_size=1000), timeout=10).events)


def summary(stub: Any, skip: int = 0) -> list[tuple[str, dict[str, Any], int]]:
    return [(e.type, MessageToDict(e.data), e.actor.kind) for e in listed(stub)][skip:]


USER, CALLER, SYSTEM = pb.ACTOR_KIND_USER, pb.ACTOR_KIND_CALLER, pb.ACTOR_KIND_SYSTEM


def test_totp_enrolment_and_removal_write_their_events_by_the_user(start_server, clock):
    _, stub = start_server(secret_key=SecretKeys.parse(Fernet.generate_key().decode()))
    sign_up(stub)
    _, codes = enrol(stub, sign_in(stub).session_token, clock)
    done = complete(stub, sign_in(stub).challenge.challenge_token, recovery_code=codes[0])
    stub.RemoveTotp(pb.RemoveTotpRequest(session_token=done.session_token, code=codes[1]))
    assert summary(stub, skip=2) == [
        ("mfa.totp_enrolled", {}, USER),
        (
            "session.created",
            {
                "methods": ["PASSWORD", "RECOVERY_CODE"],
                "assurance_level": 2.0,
                "ip_address": "",
                "user_agent": "",
            },
            USER,
        ),
        ("mfa.totp_removed", {}, USER),
    ]


def test_passkey_addition_and_removal_write_their_events_by_the_user(start_server):
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    _, stub = start_server(secret_key=keys, webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,))
    sign_up(stub)
    token = sign_in(stub).session_token
    device = SoftAuthenticator(ORIGIN)
    passkey = register(stub, token, device, name="phone")
    # Removing a factor of an account that has one needs a second-factor step-up.
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(email="ada@example.com"))
    assertion = pb.PasskeyAssertion(
        challenge_token=started.challenge_token, assertion_json=device.get(started.options_json)
    )
    stub.ReauthenticateSession(
        pb.ReauthenticateSessionRequest(session_token=token, passkey_assertion=assertion)
    )
    stub.RemovePasskey(pb.RemovePasskeyRequest(session_token=token, passkey_id=passkey.id))
    assert summary(stub, skip=2) == [
        ("passkey.added", {"passkey_id": passkey.id, "name": "phone"}, USER),
        ("passkey.removed", {"passkey_id": passkey.id}, USER),
    ]


def test_a_reset_changes_the_password_and_verifies_the_email(stub):
    user = sign_up(stub)
    sign_in(stub)
    complete_reset(stub, start_reset(stub).reset_token)
    _, _, revoked, changed, verified = listed(stub)
    assert (revoked.type, MessageToDict(revoked.data)) == (
        "session.revoked",
        {"why": "password_changed"},
    )
    assert (changed.type, MessageToDict(changed.data)) == (
        "user.password_changed",
        {"how": "reset"},
    )
    assert (verified.type, verified.user_id) == ("user.email_verified", user.id)
    assert {e.actor.kind for e in (revoked, changed, verified)} == {USER}


def test_email_verification_writes_its_event_once(stub):
    user = sign_up(stub)
    verify(stub, start_verification(stub, user.id).verification_token)
    verify(stub, start_verification(stub, user.id).verification_token)  # verified already
    assert summary(stub, skip=1) == [("user.email_verified", {"email": "ada@example.com"}, USER)]


def test_imported_users_have_their_events(stub):
    users = [
        pb.ImportedUser(
            email=f"imp{i}@example.com",
            first_name="Imp",
            last_name=str(i),
            password_hash=generate_password_hash("old password 1", "pbkdf2:sha256:1000"),
        )
        for i in range(2)
    ]
    stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10)
    stub.ImportUsers(pb.ImportUsersRequest(users=users), timeout=10)  # taken: no event
    assert [(t, d["email"], a) for t, d, a in summary(stub)] == [
        ("user.imported", "imp0@example.com", CALLER),
        ("user.imported", "imp1@example.com", CALLER),
    ]


def test_api_keys_from_the_command_line_are_made_by_the_system(server_and_stub):
    server, stub = server_and_stub
    record, _ = server.flows.api_keys.create("billing")  # as `authsvc api-key create` does
    server.flows.api_keys.revoke(name="billing")
    assert summary(stub) == [
        ("api_key.created", {"api_key_id": str(record.id), "name": "billing"}, SYSTEM),
        ("api_key.revoked", {"api_key_id": str(record.id), "name": "billing"}, SYSTEM),
    ]


POLICY = """
[callers]
"billing-service" = ["CreateUser", "ListEvents"]
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "callers.toml"
    path.write_text(POLICY)
    return str(path)


def test_a_caller_with_an_api_key_is_the_actor_by_its_name(start_server, policy_file):
    server, stub = start_server(callers=load_policy(policy_file))
    _, key = server.flows.api_keys.create("billing-service")
    metadata = (("x-api-key", key),)
    request = pb.CreateUserRequest(
        email="ada@example.com", password="correct horse 1", first_name="A", last_name="L"
    )
    stub.CreateUser(request, timeout=10, metadata=metadata)
    events = stub.ListEvents(pb.ListEventsRequest(), timeout=10, metadata=metadata).events
    created = events[-1]
    assert (created.type, created.actor.kind, created.actor.name) == (
        "user.created",
        pb.ACTOR_KIND_API_KEY,
        "billing-service",
    )
