"""Shared pieces of the hostile-input tests: payloads, a checked caller, secret tracking.

``Caller`` makes a call and enforces the invariants that hold for every call whatever
its input: the status is never INTERNAL or UNKNOWN, every error carries ErrorInfo of
domain ``authsvc``, and no response carries a password, a password hash, or a token
(or token hash) that the caller did not just receive in that very response.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import strategies as st

from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import rpc

SERVICE = "/authsvc.v1.AuthService/"
_WERKZEUG_HASH = re.compile(rb"(?:pbkdf2|scrypt):[\w:]+\$[^$\s]+\$[0-9a-f]{16,}")
# Request name → RPC, for every RPC of AuthService.
RPCS = {m.input_type.name: m.name for m in pb.DESCRIPTOR.services_by_name["AuthService"].methods}
FORBIDDEN_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
# Largest string one request may carry in each of up to four fields, under the 64 KiB limit.
BIG = 15_000

PAYLOADS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\r\n",
    "\x1b[31m",
    "\u202e\u200b\ufeff",
    "'; DROP TABLE users;--",
    "' OR '1'='1",
    '"; SELECT pg_sleep(10);--',
    "%s%n%x%p{0}{}",
    "%(password)s {password} ${jndi:ldap://x}",
    "../../etc/passwd",
    "asv_st_",
    "asv_ut_" + "A" * 43,
    "asv_st_" + "\x00" * 43,
    "asv_rt_" + "A" * 43,
    "asv_vt_" + "A" * 43,
    "00000000-0000-0000-0000-000000000000",
    "\U0001f600" * 10,
    "x" * BIG,
    "é" * (BIG // 2),
    "\x00" * BIG,
]

# Arbitrary text, any code point UTF-8 can carry (no lone surrogates: protobuf strings
# are UTF-8; invalid UTF-8 is sent as raw bytes by its own test).
hostile_text = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Zs", "Cf"]), max_size=50),
    st.uuids().map(str),
)

# Forged page tokens: the right shape (base64url of a JSON cursor), wrong contents.
_JSON_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59))]
)
_EDGE_TIMES = st.sampled_from(
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2020-01-01T00:00:00", "2020-13-01"]
)
_CURSOR_TIME = st.one_of(
    _EDGE_TIMES, st.datetimes(timezones=_ZONES).map(datetime.isoformat), _JSON_ANY
)
_CURSOR_ID = st.one_of(st.uuids().map(str), _JSON_ANY)


def _page_token(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


forged_page_tokens = st.one_of(
    st.fixed_dictionaries(
        {"c": _CURSOR_TIME, "i": _CURSOR_ID, "s": st.sampled_from(["users", "sessions:x"])}
    ),
    st.dictionaries(st.sampled_from(["c", "i", "s"]), _JSON_ANY),
    _JSON_ANY,
).map(_page_token) | st.just(base64.urlsafe_b64encode(b"[" * 20_000).decode())


@dataclass
class Outcome:
    """What one call returned: the response, or the failure's code and reason."""

    response: Any = None
    code: grpc.StatusCode = grpc.StatusCode.OK
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo of a failed call; fails when the status carries none."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"{error.code()} without a rich status: {error.details()}"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"{error.code()} without ErrorInfo")


def check_failure(error: grpc.RpcError) -> Outcome:
    """The outcome of a failed call, after checking it failed the way callers can use."""
    code = error.code()
    assert code not in FORBIDDEN_CODES, f"{code}: {error.details()}"
    info = error_info(error)
    assert info.domain == "authsvc" and info.reason, info
    return Outcome(code=code, reason=info.reason)


@dataclass
class Secrets:
    """Every password and token used so far, in each form that must never leak."""

    passwords: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)

    def forms(self, exclude: AbstractSet[str] = frozenset()) -> list[bytes]:
        """Each secret as raw UTF-8, and each token's SHA-256 as raw bytes and hex."""
        out = [p.encode() for p in self.passwords]
        for token in self.tokens - exclude:
            digest = hashlib.sha256(token.encode()).digest()
            out += [token.encode(), digest, digest.hex().encode()]
        return out


def fresh_tokens(response: Any) -> set[str]:
    """The tokens a response issues (sign-in, refresh and the lifecycle starts return new ones)."""
    return {
        getattr(response, name)
        for name in ("session_token", "update_token", "reset_token", "verification_token")
        if name in response.DESCRIPTOR.fields_by_name and getattr(response, name)
    }


class Caller:
    """Calls AuthService through a stub and checks the invariants on every outcome."""

    def __init__(self, channel: grpc.Channel, secrets: Secrets) -> None:
        self.stub = pb_grpc.AuthServiceStub(channel)
        self.secrets = secrets

    def __call__(self, request: Any) -> Outcome:
        method = rpc(self.stub, RPCS[type(request).DESCRIPTOR.name])
        try:
            response = method(request, timeout=30)
        except grpc.RpcError as error:
            return check_failure(error)
        self.check_response(response)
        return Outcome(response=response)

    def check_response(self, response: Any) -> None:
        """No secret but the tokens issued by this response, and no password hash."""
        issued = fresh_tokens(response)
        wire = response.SerializeToString()
        for secret in self.secrets.forms(exclude=issued):
            assert secret not in wire, "a response carries a secret it must not"
        # No Werkzeug password hash (method, salt, digest) may ever go out. The method
        # name alone proves nothing: the fuzzer may well call a user "pbkdf2:".
        assert not _WERKZEUG_HASH.search(wire), "a password hash leaked"
        self.secrets.tokens |= issued
