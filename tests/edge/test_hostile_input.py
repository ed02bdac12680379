"""Regressions for bugs the fuzzing found: each once answered INTERNAL."""

from __future__ import annotations

import base64
import json
import uuid

import grpc
import pytest

from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up


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
