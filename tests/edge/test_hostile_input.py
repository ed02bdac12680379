"""Regressions for bugs the fuzzing found: each once answered INTERNAL."""

from __future__ import annotations

import base64
import json
import uuid

import grpc
import pytest
from cryptography.fernet import Fernet
from google.protobuf import field_mask_pb2

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up
from tests.webauthn_authenticator import SoftAuthenticator


def page_token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "address",
    ["fe80::1%" + "x" * 60, "fe80::1%eth0", "::1%\x00", "fe80::1%\u202e"],
    ids=["long", "interface", "nul", "bidi"],
)
def test_ipv6_zone_id_is_refused_naming_the_field(stub, address):
    # Zone ids are free text: too long for the column, NUL for PostgreSQL, controls.
    sign_up(stub)
    got = fails(
        stub.CreateSession,
        pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD, ip_address=address),
    )
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["ip_address"])


def test_plain_ipv6_address_is_still_accepted(stub):
    sign_up(stub)
    assert sign_in(stub, ip_address="2001:DB8::1").session.ip_address == "2001:db8::1"


FORGED = {
    "date_overflows_in_utc": {"c": "0001-01-01T00:00:00+01:00", "i": str(uuid.uuid4())},
    "date_overflows_upwards": {"c": "9999-12-31T23:59:59-01:00", "i": str(uuid.uuid4())},
    "id_is_a_number": {"c": "2020-01-01T00:00:00+00:00", "i": 123},
    "id_is_a_list": {"c": "2020-01-01T00:00:00+00:00", "i": ["a"]},
    "date_is_a_bool": {"c": True, "i": str(uuid.uuid4())},
}


@pytest.mark.parametrize("payload", FORGED.values(), ids=FORGED.keys())
def test_forged_page_token_is_invalid_argument(stub, payload):
    user = sign_up(stub)
    users = page_token({**payload, "s": "users"})
    sessions = page_token({**payload, "s": f"sessions:{user.id}"})
    for call, request in (
        (stub.ListUsers, pb.ListUsersRequest(page_token=users)),
        (stub.ListSessions, pb.ListSessionsRequest(user_id=user.id, page_token=sessions)),
    ):
        got = fails(call, request)
        assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_token"])


def test_deeply_nested_page_token_is_invalid_argument(stub):
    nested = base64.urlsafe_b64encode(b"[" * 20_000).decode()
    got = fails(stub.ListUsers, pb.ListUsersRequest(page_token=nested))
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_token"])


# Issue 17: hostile values are refused at the edge, naming the field.

RP_ID = "auth.example.com"
ORIGIN = "https://auth.example.com"
DEEP_JSON = "[" * 5000 + "]" * 5000


@pytest.fixture
def passkey_stub(start_server):
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    return start_server(webauthn_rp_id=RP_ID, webauthn_origins=(ORIGIN,), secret_key=keys)[1]


def _registration(
    stub, device: SoftAuthenticator, name: str
) -> pb.FinishPasskeyRegistrationRequest:
    token = sign_in(stub).session_token
    started = stub.StartPasskeyRegistration(pb.StartPasskeyRegistrationRequest(session_token=token))
    return pb.FinishPasskeyRegistrationRequest(
        challenge_token=started.challenge_token,
        credential_json=device.create(started.options_json),
        name=name,
    )


@pytest.mark.parametrize(
    "name",
    ["lap\x00top", "\u202egpj.exe", "two\nlines", "bell\x07", "a\u2028b", "\u2066x\u2069"],
    ids=["nul", "bidi_override", "newline", "control", "line_separator", "bidi_isolate"],
)
def test_a_passkey_name_with_control_characters_is_refused(passkey_stub, name):
    sign_up(passkey_stub)
    request = _registration(passkey_stub, SoftAuthenticator(ORIGIN), name)
    got = fails(passkey_stub.FinishPasskeyRegistration, request)
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["name"])


def test_a_passkey_name_of_emoji_and_joiners_is_kept(passkey_stub):
    sign_up(passkey_stub)
    name = "\U0001f468\u200d\U0001f4bb laptop"  # a ZWJ sequence: a joiner is no control here
    request = _registration(passkey_stub, SoftAuthenticator(ORIGIN), name)
    assert passkey_stub.FinishPasskeyRegistration(request).passkey.name == name


def test_deeply_nested_json_is_refused_before_it_is_parsed(passkey_stub):
    sign_up(passkey_stub)
    device = SoftAuthenticator(ORIGIN)
    passkey_stub.FinishPasskeyRegistration(_registration(passkey_stub, device, "laptop"))
    started = passkey_stub.StartPasskeySignIn(pb.StartPasskeySignInRequest())
    for deep in (DEEP_JSON, '{"id":' * 5000 + "1" + "}" * 5000):
        request = pb.FinishPasskeySignInRequest(
            challenge_token=started.challenge_token, assertion_json=deep
        )
        got = fails(passkey_stub.FinishPasskeySignIn, request)
        assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["assertion_json"])
    registration = pb.FinishPasskeyRegistrationRequest(
        challenge_token="asv_ct_" + "A" * 43, credential_json=DEEP_JSON, name="phone"
    )
    got = fails(passkey_stub.FinishPasskeyRegistration, registration)
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["credential_json"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "ada\n@example.com"),
        ("email", "ada@example\n.com"),
        ("first_name", "\u202eecalovoL"),
        ("last_name", "Love\u2028lace"),
    ],
    ids=["email_newline_in_local_part", "email_newline_in_domain", "bidi_name", "line_sep"],
)
def test_newlines_and_bidi_overrides_in_a_profile_are_refused(stub, field, value):
    fields = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
    request = pb.CreateUserRequest(password=PASSWORD, **{**fields, field: value})
    got = fails(stub.CreateUser, request)
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_a_user_agent_with_a_bidi_override_is_refused(stub):
    sign_up(stub)
    got = fails(
        stub.CreateSession,
        pb.CreateSessionRequest(
            email="ada@example.com", password=PASSWORD, user_agent="Mozilla \u202e)llehs("
        ),
    )
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["user_agent"])


def test_an_id_of_non_ascii_digits_is_not_a_uuid(stub):
    user = sign_up(stub)
    indic = "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in user.id)
    for call, request, field in (
        (stub.GetUser, pb.GetUserRequest(id="\u0661" * 8 + "-1111-1111-1111-" + "1" * 12), "id"),
        (stub.GetUser, pb.GetUserRequest(id=indic), "id"),
        (stub.ListSessions, pb.ListSessionsRequest(user_id=indic), "user_id"),
    ):
        got = fails(call, request)
        assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_an_unknown_update_mask_path_is_not_echoed(stub):
    user = sign_up(stub)
    request = pb.UpdateUserRequest(
        user=pb.User(id=user.id, first_name="A"),
        update_mask=field_mask_pb2.FieldMask(paths=["first_name", "\u202e\x00evil"]),
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateUser(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "evil" not in caught.value.details()
