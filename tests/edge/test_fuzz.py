"""Property-based attacks on a live server (one per backend, shared by every example).

Every RPC gets arbitrary and hostile strings, raw bytes that do not parse (invalid
UTF-8 included), and random sequences of calls checked against a model of users,
sessions, sign-in throttling and the account lifecycle (disabling, revoking sessions,
setting and resetting passwords, reset starts and their throttle, email verification,
the audit trail). The multi-factor RPCs are left out of the model: their secrets
(TOTP codes, passkeys) come from authenticators. ``tests.fuzzing.Caller`` enforces the
invariants that hold on every call.

Every string field of every request (found through the proto descriptors, nested and
repeated ones included, so a new RPC or field is attacked as soon as it exists) also
gets each of ``tests.fuzzing.HOSTILE`` while the request's other fields are valid,
so the value travels as far as the service lets it: never INTERNAL, never a traceback
in the log.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from authsvc.rules.events import EVENT_TYPE_NAMES
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.assembly import create_server
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import make_engine
from authsvc_client.v1 import auth_service_pb2 as pb
from tests import leak_watch
from tests.conftest import CHEAP_HASH, TABLES, FakeClock
from tests.flows.test_import import django_hash
from tests.fuzzing import (
    HOSTILE,
    RPCS,
    SERVICE,
    Caller,
    Outcome,
    Secrets,
    check_failure,
    forged_page_tokens,
    hostile_text,
    path_name,
    set_string,
    string_paths,
)
from tests.helpers import STREAMING
from tests.webauthn_authenticator import SoftAuthenticator

TTL = timedelta(minutes=10)
REFRESH_TTL = timedelta(minutes=30)
MAX_AGE = timedelta(hours=1)
RESET_TTL = timedelta(minutes=10)
VERIFICATION_TTL = timedelta(minutes=30)
RESET_STARTS = 5  # per email and hour (AUTHSVC_RESET_START_LIMIT)
HOUR = timedelta(hours=1)  # the window, delay and memory of the reset-start throttle
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
EXAMPLES = settings(max_examples=50, deadline=None)  # per RPC and backend
RP_ID = "auth.example.com"
ORIGIN = "https://auth.example.com"
# Passkeys are configured, so their RPCs parse what they are sent instead of refusing early.
KEYS = SecretKeys.parse(Fernet.generate_key().decode())


@dataclass
class Live:
    """The module's server: its channel, clock, database and the secrets seen so far."""

    channel: grpc.Channel
    clock: FakeClock
    url: str
    secrets: Secrets = field(default_factory=Secrets)
    user_ids: set[str] = field(default_factory=set)

    def caller(self) -> Caller:
        return Caller(self.channel, self.secrets)

    def empty_database(self) -> None:
        engine = make_engine(self.url)
        with engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        engine.dispose()


@pytest.fixture(autouse=True)
def no_traceback_is_logged() -> Iterator[None]:
    """Whatever a test sends, nothing unexpected happens: no record carries a traceback."""
    since = leak_watch.WATCH.mark()
    yield
    tracebacks = leak_watch.WATCH.tracebacks(since)
    assert not tracebacks, tracebacks[0][:2000]


@pytest.fixture(scope="module")
def live(migrated_url: str) -> Iterator[Live]:
    clock = FakeClock()
    server, port = create_server(
        Settings(
            address="127.0.0.1:0",
            database_url=migrated_url,
            password_hash=CHEAP_HASH,
            session_ttl=TTL,
            refresh_ttl=REFRESH_TTL,
            session_max_age=MAX_AGE,
            reset_ttl=RESET_TTL,
            verification_ttl=VERIFICATION_TTL,
            reset_start_limit=RESET_STARTS,
            # No purge: the model keeps what has expired until it is ended or replaced.
            purge_interval=timedelta(0),
            rpc_threads=8,
            webauthn_rp_id=RP_ID,
            webauthn_origins=(ORIGIN,),
            secret_key=KEYS,
            # Streams answer at once: with an event, or else a heartbeat.
            event_heartbeat_interval=timedelta(milliseconds=100),
        ),
        clock=clock,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    state = Live(channel, clock, migrated_url)
    state.empty_database()
    _seed(state)
    yield state
    channel.close()
    server.stop(0)


def _seed(live: Live) -> None:
    """Two users, one signed in, so attacks have real ids and tokens to aim at or leak."""
    caller = live.caller()
    for n in range(2):
        password = f"pw-seed-{uuid.uuid4().hex}"
        live.secrets.passwords.add(password)
        email = f"seed{n}@example.com"
        got = caller(
            pb.CreateUserRequest(email=email, password=password, first_name="S", last_name="D")
        )
        live.user_ids.add(got.response.user.id)
        assert caller(pb.CreateSessionRequest(email=email, password=password)).ok


# Raw bytes: grpc would parse them before any handler runs.


def _string_fields(message: Any) -> list[FieldDescriptor]:
    return [f for f in message.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING]


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


# Not UTF-8: a stray continuation byte, an overlong "/", an encoded lone surrogate
# (the "invalid surrogates" of the wire), a code point past U+10FFFF, a cut sequence.
BAD_UTF8 = [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xe2\x82"]
STRING_FIELDS = [(name, f.name) for name in RPCS for f in _string_fields(getattr(pb, name))]


def _raw_call(live: Live, rpc: str, body: bytes) -> Outcome:
    kind = live.channel.unary_stream if rpc in STREAMING else live.channel.unary_unary
    call = kind(SERVICE + rpc, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        answer = call(body, timeout=30)
        if rpc in STREAMING:
            next(answer)  # its first message (a stream that fails, fails before it)
            answer.cancel()
    except grpc.RpcError as error:
        return check_failure(error)
    return Outcome()


@pytest.mark.parametrize(("request_name", "field_name"), STRING_FIELDS)
@pytest.mark.parametrize("bad", BAD_UTF8, ids=lambda b: b.hex())
def test_invalid_utf8_in_any_string_field_is_invalid_argument(live, request_name, field_name, bad):
    number = getattr(pb, request_name).DESCRIPTOR.fields_by_name[field_name].number
    body = _varint(number << 3 | 2) + _varint(len(bad)) + bad
    got = _raw_call(live, RPCS[request_name], body)
    assert (got.code, got.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


MALFORMED = {
    "truncated_varint": b"\x08\xff",
    "length_past_the_end": b"\x0a\x7fabc",
    "reserved_wire_type": b"\x0f",
    "field_number_zero": b"\x02\x00",
    "unclosed_group": b"\x9b\x06",
    "deeply_nested_groups": b"\x9b\x06" * 5000,
    "end_group_without_start": b"\x9c\x06",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_message_is_invalid_argument(live, body):
    got = _raw_call(live, "UpdateUser", body)
    assert (got.code, got.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


@pytest.mark.parametrize("rpc", sorted(RPCS.values()))
@EXAMPLES
@given(body=st.binary(max_size=4096))
def test_arbitrary_bytes_never_fail_internally(live, rpc, body):
    _raw_call(live, rpc, body)  # the checks are in check_failure


# Arbitrary strings in every field of every RPC.

MASK_PATHS = st.lists(
    st.one_of(
        st.sampled_from(["email", "first_name", "last_name", "*", "id", "password_hash"]),
        st.text(max_size=40),
    ),
    max_size=4,
)


def _fill(message: Any, data: st.DataObject, ids: list[str], depth: int = 0) -> None:
    """Fills every field, nested and repeated messages included (from the descriptors)."""
    for f in message.DESCRIPTOR.fields:
        if f.name == "page_token":
            setattr(message, f.name, data.draw(st.one_of(hostile_text, forged_page_tokens)))
        elif f.type == FieldDescriptor.TYPE_STRING and f.is_repeated:
            # Event type filters: hostile text among real names.
            names = st.one_of(hostile_text, st.sampled_from(sorted(EVENT_TYPE_NAMES)))
            getattr(message, f.name).extend(data.draw(st.lists(names, max_size=3)))
        elif f.type == FieldDescriptor.TYPE_STRING:
            choice = st.one_of(hostile_text, st.sampled_from(ids)) if ids else hostile_text
            setattr(message, f.name, data.draw(choice))
        elif f.type == FieldDescriptor.TYPE_INT32:
            setattr(message, f.name, data.draw(st.integers(-(2**31), 2**31 - 1)))
        elif f.type == FieldDescriptor.TYPE_BOOL:
            setattr(message, f.name, data.draw(st.booleans()))
        elif f.message_type is None or depth >= 3:
            continue
        elif f.message_type.name == "FieldMask":
            getattr(message, f.name).paths.extend(data.draw(MASK_PATHS))
        elif f.message_type.name == "Timestamp":
            stamp = getattr(message, f.name)
            stamp.seconds = data.draw(st.integers(-(2**40), 2**40))
            stamp.nanos = data.draw(st.integers(0, 999_999_999))
        elif f.is_repeated:
            for _ in range(data.draw(st.integers(0, 2))):
                _fill(getattr(message, f.name).add(), data, ids, depth + 1)
        elif data.draw(st.booleans()):  # a oneof's message, or an optional one
            _fill(getattr(message, f.name), data, ids, depth + 1)


@pytest.mark.parametrize("request_name", sorted(RPCS))
@EXAMPLES
@given(data=st.data())
def test_arbitrary_strings_in_every_rpc_never_fail_internally(live, request_name, data):
    caller = live.caller()
    request = getattr(pb, request_name)()
    _fill(request, data, ids=sorted(live.user_ids))
    assume(len(request.SerializeToString()) < 64 * 1024)
    caller(request)  # the checks are in Caller


def test_fields_near_the_size_limit_are_refused_cleanly(live):
    caller = live.caller()
    huge = "A" * (64 * 1024 - 64)
    for request in (
        pb.CreateUserRequest(email=huge),
        pb.CreateSessionRequest(password=huge),
        pb.ValidateTokenRequest(session_token=huge),
        pb.ListUsersRequest(page_token=huge),
    ):
        got = caller(request)
        assert got.code in (grpc.StatusCode.INVALID_ARGUMENT, UNAUTHENTICATED), got


# Each hostile value in each string field of each RPC, the other fields valid.


@dataclass
class Valid:
    """A user with a session and a passkey, whose values make a request valid but for
    the one field under attack; the challenges are fresh for each request."""

    live: Live
    email: str
    password: str
    user_id: str
    session_token: str
    device: SoftAuthenticator

    @classmethod
    def signed_up(cls, live: Live) -> Valid:
        caller, password = live.caller(), f"pw-valid-{uuid.uuid4().hex}"
        email = f"valid-{uuid.uuid4().hex[:12]}@example.com"
        live.secrets.passwords.add(password)
        user = caller(
            pb.CreateUserRequest(email=email, password=password, first_name="V", last_name="D")
        )
        signed_in = caller(pb.CreateSessionRequest(email=email, password=password))
        token = signed_in.response.session_token
        device = SoftAuthenticator(ORIGIN)
        started = caller(pb.StartPasskeyRegistrationRequest(session_token=token)).response
        registered = caller(
            pb.FinishPasskeyRegistrationRequest(
                challenge_token=started.challenge_token,
                credential_json=device.create(started.options_json),
                name="laptop",
            )
        )
        assert registered.ok, registered
        return cls(live, email, password, user.response.user.id, token, device)

    def assertion(self) -> pb.PasskeyAssertion:
        started = self.live.caller()(pb.StartPasskeySignInRequest(email=self.email)).response
        json_ = self.device.get(started.options_json)
        return pb.PasskeyAssertion(challenge_token=started.challenge_token, assertion_json=json_)

    def sign_in_challenge(self) -> str:
        got = self.live.caller()(pb.CreateSessionRequest(email=self.email, password=self.password))
        return got.response.challenge.challenge_token if got.ok else ""

    def request(self, name: str) -> Any:
        """A valid request of RPC ``name`` (or as valid as a single request can be)."""
        new_password = f"pw-new-{uuid.uuid4().hex}"
        by_field = {
            "email": f"valid-{uuid.uuid4().hex[:12]}@example.com",
            "password": self.password,
            "current_password": self.password,
            "new_password": new_password,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "user_agent": "curl/8",
            "ip_address": "203.0.113.9",
            "id": self.user_id,
            "user_id": self.user_id,
            "session_id": str(uuid.uuid4()),
            "passkey_id": str(uuid.uuid4()),
            "session_token": self.session_token,
            "code": "123456",
            "name": "laptop",
        }
        request = getattr(pb, name)()
        for f in request.DESCRIPTOR.fields:
            if f.name in by_field and f.type == FieldDescriptor.TYPE_STRING:
                setattr(request, f.name, by_field[f.name])
        self._complete(request, name)
        return request

    def _complete(self, request: Any, name: str) -> None:
        if name == "StartPasskeySignInRequest":
            request.email = self.email
        elif name == "UpdateUserRequest":
            request.user.id = self.user_id
            request.update_mask.paths.append("first_name")
            request.user.first_name = "Ada"
        elif name == "ImportUsersRequest":
            email = f"imported-{uuid.uuid4().hex[:12]}@example.com"
            request.users.add(email=email, first_name="Old", last_name="User")
            request.users[0].password_hash = django_hash("the old password")
        elif name == "FinishPasskeyRegistrationRequest":
            started = self.live.caller()(
                pb.StartPasskeyRegistrationRequest(session_token=self.session_token)
            )
            if started.ok:
                request.challenge_token = started.response.challenge_token
                request.credential_json = SoftAuthenticator(ORIGIN).create(
                    started.response.options_json
                )
        elif name == "FinishPasskeySignInRequest":
            assertion = self.assertion()
            request.challenge_token = assertion.challenge_token
            request.assertion_json = assertion.assertion_json
        elif name in ("CompleteSignInRequest", "ReauthenticateSessionRequest"):
            request.passkey_assertion.CopyFrom(self.assertion())
            if name == "CompleteSignInRequest":
                request.challenge_token = self.sign_in_challenge()


PASSWORD_FIELDS = ("password", "current_password", "new_password")
HOSTILE_PATHS = [
    (name, path) for name in sorted(RPCS) for path in string_paths(getattr(pb, name).DESCRIPTOR)
]


def _hostile(path: tuple[FieldDescriptor, ...], value: str) -> str:
    # An accepted password is watched for in every later log line: each one sent is made
    # unique, so that the same text sent as a name is not taken for a leaked password.
    if path[-1].name in PASSWORD_FIELDS:
        return value + uuid.uuid4().hex
    return value


#: Requests with no string field at all: nothing to attack (their RPCs are still called
#: with arbitrary bytes by test_arbitrary_bytes_never_fail_internally).
NO_STRINGS = frozenset(
    name for name in RPCS if not list(string_paths(getattr(pb, name).DESCRIPTOR))
)


@pytest.mark.parametrize("request_name", sorted(set(RPCS) - NO_STRINGS))
def test_hostile_values_in_every_string_field_never_fail_internally(live, request_name):
    valid = Valid.signed_up(live)
    caller = live.caller()
    since = leak_watch.WATCH.mark()
    paths = [path for name, path in HOSTILE_PATHS if name == request_name]
    assert paths, f"{request_name} has no string field?"
    for path in paths:
        for value in HOSTILE:
            request = valid.request(request_name)
            set_string(request, path, _hostile(path, value))
            got = caller(request)  # never INTERNAL or UNKNOWN: the checks are in Caller
            if got.code == grpc.StatusCode.INVALID_ARGUMENT:
                assert got.reason == "INVALID_ARGUMENT", (path_name(path), got)
    tracebacks = leak_watch.WATCH.tracebacks(since)
    assert not tracebacks, tracebacks[0][:2000]


def test_every_string_field_is_attacked():
    # Driven by the descriptors: a new RPC or a new (nested) string field is in the list.
    names = {f"{name}.{path_name(path)}" for name, path in HOSTILE_PATHS}
    assert {
        "ImportUsersRequest.users.password_hash",
        "CompleteSignInRequest.passkey_assertion.assertion_json",
        "UpdateUserRequest.update_mask.paths",
        "FinishPasskeyRegistrationRequest.name",
    } <= names
    assert {name for name, _ in HOSTILE_PATHS} == set(RPCS) - NO_STRINGS
    assert {"GetSigningKeysRequest", "ListWebhooksRequest"} == NO_STRINGS


# Random sequences of calls against a model.


@dataclass
class MSession:
    id: str
    user_id: str
    token: str
    update: str
    expires: datetime
    refresh_expires: datetime
    absolute: datetime
    alive: bool = True


@dataclass
class MUser:
    id: str
    email: str
    password: str
    alive: bool = True
    disabled: bool = False
    verified: bool = False
    old_passwords: list[str] = field(default_factory=list)

    def new_password(self, password: str) -> None:
        self.old_passwords.append(self.password)
        self.password = password


@dataclass
class MToken:
    """A reset or verification token the server handed out, and whether it still works."""

    token: str
    purpose: str  # "reset" or "verification"
    user: MUser
    expires: datetime
    live: bool = True


@dataclass
class MStarts:
    """The throttle of StartPasswordReset for one email, exactly (rules.throttling under
    the policy ``runtime.assembly.reset_start_throttle``).

    Every start counts and none is uncounted. The RESET_STARTS-th start in a row (starts
    an hour or more apart are not in a row) and each one after it blocks the email for
    an hour; so do RESET_STARTS starts within the last hour. A refused start counts not.
    """

    times: list[datetime] = field(default_factory=list)
    in_a_row: int = 0
    blocked_until: datetime | None = None

    def blocked(self, now: datetime) -> bool:
        if self.blocked_until is not None and self.blocked_until > now:
            return True
        return sum(t > now - HOUR for t in self.times) >= RESET_STARTS

    def count(self, now: datetime) -> None:
        fresh = not self.times or self.times[-1] <= now - HOUR
        self.in_a_row = 1 if fresh else self.in_a_row + 1
        self.times.append(now)
        if self.in_a_row >= RESET_STARTS:
            self.blocked_until = now + HOUR


# The audit events the model predicts exactly, counted per user: each success of the
# call that records one, each throttled reset start, each expired mailed token.
AUDITED = frozenset(
    {
        "USER_CREATED",
        "USER_DELETED",
        "SIGN_IN_SUCCEEDED",
        "SIGNED_OUT",
        "PASSWORD_CHANGED",
        "USER_DISABLED",
        "USER_ENABLED",
        "SESSION_REVOKED",
        "USER_SESSIONS_REVOKED",
        "PASSWORD_SET",
        "PASSWORD_RESET_STARTED",
        "PASSWORD_RESET_THROTTLED",
        "PASSWORD_RESET_COMPLETED",
        "PASSWORD_RESET_FAILED",
        "EMAIL_VERIFICATION_STARTED",
        "EMAIL_VERIFIED",
        "EMAIL_VERIFICATION_FAILED",
    }
)
TOKEN_FAILED = {"reset": "PASSWORD_RESET_FAILED", "verification": "EMAIL_VERIFICATION_FAILED"}

GOOD_NAMES = st.sampled_from(["Ada", "Grace", " Alan ", "Zoë", "O'Brien", "李"])
GOOD_AGENTS = st.sampled_from(["", "curl/8", "Mozilla/5.0 (X11)", "'; DROP TABLE sessions;--"])
GOOD_IPS = st.sampled_from(["", "203.0.113.7", "2001:db8::1", " 192.0.2.1 ", "::ffff:192.0.2.1"])
BAD_IPS = st.sampled_from(["fe80::1%" + "x" * 60, "fe80::1%eth0", "1.2.3.4.5", "::1%\x00"])
PAGE_TOKENS = st.one_of(st.just(""), hostile_text, forged_page_tokens)
PASSWORDS = st.builds(lambda u: f"pw-{u.hex}", st.uuids())
# New passwords, each with whether the policy takes it (8 to 256 characters, not one of the
# most common). Every one it takes is made unique: the leak watch looks for each accepted
# password in every log line, and arbitrary text (Hypothesis mixes in the code's own
# constants, like "update_token") would be found there by chance.
_GOOD_SHAPES = [
    lambda h: f"pw-{h}",
    lambda h: f"pw-{h[:5]}",  # 8 characters
    lambda h: f"pw-{h}".ljust(256, "é"),  # 256 characters, not ASCII
    lambda h: f"pw- 李 \U0001f600 {h} ",
]
_BAD_SHAPES = [
    lambda h: "",
    lambda h: f"pw-{h[:4]}",  # 7 characters
    lambda h: f"pw-{h}".ljust(257, "é"),
    lambda h: "password",
    lambda h: "iLoveYou",
]
NEW_PASSWORDS = st.one_of(
    st.builds(lambda f, u: (f(u.hex), True), st.sampled_from(_GOOD_SHAPES), st.uuids()),
    st.builds(lambda f, u: (f(u.hex), False), st.sampled_from(_BAD_SHAPES), st.uuids()),
)
NOBODY_EMAIL = "nobody@example.com"  # never registered: its reset starts are throttled alike


def _time(stamp: Any) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


class AuthModel(RuleBasedStateMachine):
    """Random calls; after each, the server must agree with this model of what exists."""

    live: Live

    def __init__(self) -> None:
        super().__init__()
        self.live.empty_database()
        self.call = self.live.caller()
        self.users: list[MUser] = []
        self.sessions: list[MSession] = []
        self.old_session_tokens: list[str] = []
        self.old_update_tokens: dict[str, MSession] = {}
        self.failures: dict[str, int] = {}  # consecutive failed sign-ins, by account email
        self.mailed: list[MToken] = []  # reset and verification tokens, live or not
        self.starts: dict[str, MStarts] = {}  # reset starts, by email
        self.audited: Counter[tuple[str, str]] = Counter()  # (user id, event) -> count

    # Helpers

    @property
    def now(self) -> datetime:
        return self.live.clock.now

    def user(self, user_id: str) -> MUser | None:
        return next((u for u in self.users if u.id == user_id and u.alive), None)

    def _end_sessions(self, keep: Any = lambda s: False, **match: Any) -> list[MSession]:
        """Marks the matching live sessions ended; returns them."""
        ended = [
            s
            for s in self.sessions
            if s.alive and all(getattr(s, k) == v for k, v in match.items()) and not keep(s)
        ]
        for s in ended:
            s.alive = False
            self.old_session_tokens.append(s.token)
        return ended

    def _gone(self, ended: list[MSession]) -> None:
        """Sessions just ended: at once, neither their session nor their update token works."""
        for s in ended:
            got = self.call(pb.ValidateTokenRequest(session_token=s.token))
            assert got.reason == "TOKEN_INVALID", got
            got = self.call(pb.RefreshSessionRequest(update_token=s.update))
            assert got.reason == "TOKEN_INVALID", got

    def _forget(self, user: MUser, purpose: str | None = None) -> None:
        """The user's unused mailed tokens (of one purpose, or all) end: at once, each is
        refused like an unknown one (expired or not)."""
        for t in self.mailed:
            if t.live and t.user is user and purpose in (None, t.purpose):
                t.live = False
                if t.purpose == "reset":
                    new = f"pw-{uuid.uuid4().hex}"
                    got = self.call(
                        pb.CompletePasswordResetRequest(reset_token=t.token, new_password=new)
                    )
                else:
                    got = self.call(pb.VerifyEmailRequest(verification_token=t.token))
                assert got.reason == "TOKEN_INVALID", got

    def _audit(self, user: MUser | str | None, event: str) -> None:
        assert event in AUDITED
        if user is not None:
            self.audited[(user if isinstance(user, str) else user.id, event)] += 1

    def _same(self, shown: Any, user: MUser) -> None:
        """A User of a response shows what the model holds about ``user``."""
        state = pb.USER_STATE_DISABLED if user.disabled else pb.USER_STATE_ACTIVE
        assert (
            shown.id,
            shown.email,
            shown.state,
            shown.email_verified,
            shown.HasField("email_verify_time"),
        ) == (user.id, user.email, state, user.verified, user.verified), shown

    def _open(self, user: MUser, got: Outcome) -> None:
        r = got.response
        absolute = self.now + MAX_AGE
        s = MSession(
            r.session.id,
            user.id,
            r.session_token,
            r.update_token,
            min(self.now + TTL, absolute),
            min(self.now + REFRESH_TTL, absolute),
            absolute,
        )
        assert r.session.expire_time.ToDatetime().replace(tzinfo=s.expires.tzinfo) == s.expires
        self._same(r.user, user)
        self.sessions.append(s)
        self._audit(user, "SIGN_IN_SUCCEEDED")

    def _session_token(self, data: st.DataObject) -> tuple[str, MSession | None]:
        """A token to present as a session token: often a live one (lifecycle calls end
        sessions fast), else any known, stale or wrong-kind token, else arbitrary text."""
        alive = [(s.token, s) for s in self.sessions if s.alive]
        known = [(s.token, s) for s in self.sessions]
        stale: list[tuple[str, MSession | None]] = [(t, None) for t in self.old_session_tokens]
        wrong_kind = [(s.update, None) for s in self.sessions]
        pool = known + stale + wrong_kind
        pick = data.draw(st.integers(0, 3))
        if alive and pick == 3:
            return data.draw(st.sampled_from(alive))
        if pool and pick:
            return data.draw(st.sampled_from(pool))
        return data.draw(hostile_text), None

    def _mail_token(self, data: st.DataObject, purpose: str) -> tuple[str, MToken | None]:
        """A token to present as one of ``purpose``, and its model if it is of that kind."""
        mailed = [(t.token, t) for t in self.mailed]
        wrong_kind = [(s.token, None) for s in self.sessions[-2:]]
        pool: list[tuple[str, MToken | None]] = mailed + wrong_kind
        if pool and data.draw(st.integers(0, 3)):
            token, t = data.draw(st.sampled_from(pool))
            return token, t if t is not None and t.purpose == purpose else None
        return data.draw(hostile_text), None

    def _expect_mail_token(self, got: Outcome, t: MToken | None) -> bool:
        """Checks the outcome of presenting a mailed token; True if it was used."""
        if t is None or not t.live:
            assert got.reason == "TOKEN_INVALID", got  # unknown, used, ended, other kind
        elif self.now >= t.expires:
            assert got.reason == "TOKEN_EXPIRED", got
            self._audit(t.user, TOKEN_FAILED[t.purpose])
        else:
            assert got.ok, got
            t.live = False
            return True
        return False

    def _throttled(self, email: str, got: Outcome) -> bool:
        """Counts a password check of ``email``'s account; True if it was refused unchecked.

        Refusal (TOO_MANY_ATTEMPTS) is allowed only after 5 consecutive failures; when it
        happens depends on the delay schedule and the clock, which this model leaves out.
        The right password resets the count, even when the account is disabled.
        """
        if got.reason == "TOO_MANY_ATTEMPTS":
            assert self.failures.get(email, 0) >= 5, got
            return True
        if got.reason == "INVALID_CREDENTIALS":
            self.failures[email] = self.failures.get(email, 0) + 1
        elif got.ok or got.reason == "USER_DISABLED":
            self.failures[email] = 0
        return False

    def _expect_session(self, got: Outcome, s: MSession | None) -> None:
        """The outcome a call needing a live, unexpired session token must have."""
        if s is None or not s.alive:
            assert got.reason in ("TOKEN_INVALID", "INVALID_ARGUMENT"), got
        elif self.now >= s.expires:
            assert got.reason == "TOKEN_EXPIRED", got
        else:
            assert got.ok, got

    # Users

    @initialize(password=PASSWORDS, sessions=st.integers(1, 3), mailed=st.booleans())
    def signed_in_user(self, password: str, sessions: int, mailed: bool) -> None:
        """Sequences start with a signed-in user, so most steps have real tokens to use;
        when ``mailed``, with a reset and a verification pending too."""
        self._create_user("Ada", "Lovelace", password, valid=True)
        user = self.users[-1]
        for _ in range(sessions):
            assert self._sign_in(user, password, "", "").ok
        if mailed:
            self._start_reset(user.email, user.email, "", at_once=False, new="")
            self._start_verification(user.id, user, at_once=False)

    @rule(first=GOOD_NAMES, last=GOOD_NAMES, password=PASSWORDS)
    def create_user(self, first: str, last: str, password: str) -> None:
        self._create_user(first, last, password, valid=True)

    @rule(first=hostile_text, last=hostile_text, password=PASSWORDS)
    def create_user_with_any_names(self, first: str, last: str, password: str) -> None:
        self._create_user(first, last, password, valid=False)

    def _create_user(self, first: str, last: str, password: str, valid: bool) -> None:
        email = f"u-{uuid.uuid4().hex[:12]}@Example.com"
        self.live.secrets.passwords.add(password)
        request = pb.CreateUserRequest(
            email=email, password=password, first_name=first, last_name=last
        )
        got = self.call(request)
        if got.ok:
            u = got.response.user
            assert (u.email, u.first_name, u.last_name) == (
                email.lower(),
                first.strip(),
                last.strip(),
            )
            user = MUser(u.id, u.email, password)
            self._same(u, user)
            self.users.append(user)
            self.live.user_ids.add(u.id)
            self._audit(user, "USER_CREATED")
        else:
            assert not valid and got.reason == "INVALID_ARGUMENT", got

    @precondition(lambda self: self.users)
    @rule(data=st.data(), password=PASSWORDS)
    def create_user_with_known_email(self, data: st.DataObject, password: str) -> None:
        user = data.draw(st.sampled_from(self.users))
        email = data.draw(st.sampled_from([user.email, user.email.upper(), f" {user.email} "]))
        self.live.secrets.passwords.add(password)
        request = pb.CreateUserRequest(
            email=email, password=password, first_name="A", last_name="B"
        )
        got = self.call(request)
        taken = any(u.alive and u.email == user.email for u in self.users)
        if taken:
            assert got.reason == "EMAIL_TAKEN", got
        else:  # its owner was deleted: the email is free again
            assert got.ok, got
            new = MUser(got.response.user.id, user.email, password)
            self._same(got.response.user, new)
            self.users.append(new)
            self._audit(new, "USER_CREATED")

    def _user_id(self, data: st.DataObject) -> tuple[str, MUser | None]:
        options = [(u.id, u) for u in self.users]
        if options and data.draw(st.integers(0, 3)):
            return data.draw(st.sampled_from(options))
        return data.draw(st.one_of(st.uuids().map(str), hostile_text)), None

    def _no_user(self, got: Outcome, user: MUser | None) -> bool:
        """Checks the outcome of naming a user that does not exist; False if it does."""
        if user is None:  # an arbitrary id
            assert got.reason in ("USER_NOT_FOUND", "INVALID_ARGUMENT"), got
        elif not user.alive:
            assert got.reason == "USER_NOT_FOUND", got
        else:
            return False
        return True

    @rule(data=st.data())
    def get_user(self, data: st.DataObject) -> None:
        user_id, user = self._user_id(data)
        got = self.call(pb.GetUserRequest(id=user_id))
        if not self._no_user(got, user):
            assert user is not None and got.ok, got
            self._same(got.response.user, user)

    @rule(data=st.data(), first=st.one_of(GOOD_NAMES, hostile_text), mask=MASK_PATHS)
    def update_user(self, data: st.DataObject, first: str, mask: list[str]) -> None:
        user_id, user = self._user_id(data)
        request = pb.UpdateUserRequest(user=pb.User(id=user_id, first_name=first))
        request.update_mask.paths.extend(mask)
        got = self.call(request)
        if got.ok:
            assert user is not None and user.alive
            if got.response.user.email != user.email:  # the mask named (and set) it
                user.email, user.verified = got.response.user.email, False
                self._forget(user)
            self._same(got.response.user, user)
        else:
            assert got.reason in ("USER_NOT_FOUND", "INVALID_ARGUMENT"), got

    @rule(data=st.data())
    def delete_user(self, data: st.DataObject) -> None:
        user_id, user = self._user_id(data)
        got = self.call(pb.DeleteUserRequest(id=user_id))
        if not self._no_user(got, user):
            assert user is not None and got.ok, got
            user.alive = False
            self._forget(user)
            self._gone(self._end_sessions(user_id=user.id))
            self._audit(user, "USER_DELETED")

    @rule(page_size=st.integers(-5, 3), token=PAGE_TOKENS)
    def list_users(self, page_size: int, token: str) -> None:
        got = self.call(pb.ListUsersRequest(page_size=page_size, page_token=token))
        if got.ok and not token:
            listed = {u.id for u in got.response.users}
            alive = {u.id for u in self.users if u.alive}
            assert listed <= alive and (len(listed) == min(len(alive), page_size or 50))
            for shown in got.response.users:
                user = self.user(shown.id)
                assert user is not None
                self._same(shown, user)
        elif not got.ok:
            assert got.reason == "INVALID_ARGUMENT", got

    # Account lifecycle: disabling, revoking, setting and resetting passwords, verifying

    @rule(data=st.data())
    def disable_user(self, data: st.DataObject) -> None:
        user_id, user = self._user_id(data)
        got = self.call(pb.DisableUserRequest(id=user_id))
        if self._no_user(got, user):
            return
        assert user is not None and got.ok, got  # a disabled user again: no change, no error
        user.disabled = True
        self._same(got.response.user, user)
        self._forget(user)
        self._gone(self._end_sessions(user_id=user.id))
        self._audit(user, "USER_DISABLED")

    @rule(data=st.data())
    def enable_user(self, data: st.DataObject) -> None:
        user_id, user = self._user_id(data)
        got = self.call(pb.EnableUserRequest(id=user_id))
        if self._no_user(got, user):
            return
        assert user is not None and got.ok, got  # no session comes back
        user.disabled = False
        self._same(got.response.user, user)
        self._audit(user, "USER_ENABLED")

    @rule(data=st.data())
    def revoke_session(self, data: st.DataObject) -> None:
        options = [(s.id, s) for s in self.sessions]
        s: MSession | None = None
        if options and data.draw(st.integers(0, 3)):
            session_id, s = data.draw(st.sampled_from(options))
        else:
            session_id = data.draw(st.one_of(st.uuids().map(str), hostile_text))
        got = self.call(pb.RevokeSessionRequest(session_id=session_id))
        if s is None:
            assert got.reason in ("SESSION_NOT_FOUND", "INVALID_ARGUMENT"), got
        elif not s.alive:
            assert got.reason == "SESSION_NOT_FOUND", got
        else:
            assert got.ok, got  # expired or not
            self._gone(self._end_sessions(id=s.id))
            self._audit(s.user_id, "SESSION_REVOKED")

    @rule(data=st.data())
    def revoke_user_sessions(self, data: st.DataObject) -> None:
        user_id, user = self._user_id(data)
        got = self.call(pb.RevokeUserSessionsRequest(user_id=user_id))
        if self._no_user(got, user):
            return
        assert user is not None and got.ok, got
        ended = self._end_sessions(user_id=user.id)
        assert got.response.revoked_count == len(ended), got  # expired ones included
        self._gone(ended)
        self._audit(user, "USER_SESSIONS_REVOKED")

    @rule(data=st.data(), new=NEW_PASSWORDS)
    def set_password(self, data: st.DataObject, new: tuple[str, bool]) -> None:
        user_id, user = self._user_id(data)
        password, acceptable = new
        if acceptable:
            self.live.secrets.passwords.add(password)
        got = self.call(pb.SetPasswordRequest(user_id=user_id, new_password=password))
        if got.reason == "INVALID_ARGUMENT" or not acceptable:
            assert got.reason == "INVALID_ARGUMENT" and (not acceptable or user is None), got
            return
        if self._no_user(got, user):
            return
        assert user is not None and got.ok, got  # a disabled user's too
        user.new_password(password)
        self._forget(user, "reset")
        self._gone(self._end_sessions(user_id=user.id))
        self._audit(user, "PASSWORD_SET")

    @rule(data=st.data(), agent=GOOD_AGENTS, at_once=st.booleans(), new=PASSWORDS)
    def start_password_reset(
        self, data: st.DataObject, agent: str, at_once: bool, new: str
    ) -> None:
        """Starts a reset and, ``at_once``, completes it (so it is seldom ended before)."""
        email = data.draw(st.sampled_from([u.email for u in self.users] + [NOBODY_EMAIL]))
        sent = data.draw(st.sampled_from([email, email.upper(), f" {email} "]))
        self._start_reset(email, sent, agent, at_once, new)

    def _start_reset(self, email: str, sent: str, agent: str, at_once: bool, new: str) -> None:
        got = self.call(pb.StartPasswordResetRequest(email=sent, user_agent=agent))
        owner = next((u for u in self.users if u.alive and u.email == email), None)
        starts = self.starts.setdefault(email, MStarts())
        if starts.blocked(self.now):
            assert got.reason == "TOO_MANY_ATTEMPTS", got
            self._audit(owner, "PASSWORD_RESET_THROTTLED")
            return
        assert got.ok, got
        starts.count(self.now)
        self._audit(owner, "PASSWORD_RESET_STARTED")
        r = got.response
        expires = self.now + RESET_TTL
        assert _time(r.expire_time) == expires, got  # set even without a token
        if owner is None or owner.disabled:
            assert r.reset_token == "", got  # alike for unknown and disabled accounts
        else:
            assert r.reset_token.startswith("asv_rt_"), got
            self._forget(owner, "reset")
            self.mailed.append(MToken(r.reset_token, "reset", owner, expires))
            if at_once:
                self._complete_reset(r.reset_token, self.mailed[-1], new)

    @rule(data=st.data(), new=NEW_PASSWORDS)
    def complete_password_reset(self, data: st.DataObject, new: tuple[str, bool]) -> None:
        token, t = self._mail_token(data, "reset")
        self._complete_reset(token, t, *new)

    @precondition(lambda self: any(t.purpose == "reset" for t in self.mailed))
    @rule(data=st.data(), new=PASSWORDS)
    def complete_password_reset_with_a_mailed_token(self, data: st.DataObject, new: str) -> None:
        t = data.draw(st.sampled_from([t for t in self.mailed if t.purpose == "reset"]))
        self._complete_reset(t.token, t, new)

    def _complete_reset(
        self, token: str, t: MToken | None, new: str, acceptable: bool = True
    ) -> None:
        if acceptable:
            self.live.secrets.passwords.add(new)
        got = self.call(pb.CompletePasswordResetRequest(reset_token=token, new_password=new))
        if got.reason == "INVALID_ARGUMENT" or not acceptable or not token:
            assert got.reason == "INVALID_ARGUMENT" and (not acceptable or not token), got
            return
        if not self._expect_mail_token(got, t):
            return
        assert t is not None
        user = t.user
        user.new_password(new)
        user.verified = True  # the token reached the address
        self._same(got.response.user, user)
        self._gone(self._end_sessions(user_id=user.id))
        self._audit(user, "PASSWORD_RESET_COMPLETED")

    @rule(data=st.data(), at_once=st.booleans())
    def start_email_verification(self, data: st.DataObject, at_once: bool) -> None:
        """Starts a verification and, ``at_once``, verifies it."""
        self._start_verification(*self._user_id(data), at_once)

    def _start_verification(self, user_id: str, user: MUser | None, at_once: bool) -> None:
        got = self.call(pb.StartEmailVerificationRequest(user_id=user_id))
        if self._no_user(got, user):
            return
        assert user is not None
        if user.disabled:
            assert got.reason == "USER_DISABLED", got
            return
        assert got.ok, got
        r = got.response
        expires = self.now + VERIFICATION_TTL
        assert r.verification_token.startswith("asv_vt_") and _time(r.expire_time) == expires
        self._forget(user, "verification")
        self.mailed.append(MToken(r.verification_token, "verification", user, expires))
        self._audit(user, "EMAIL_VERIFICATION_STARTED")
        if at_once:
            self._verify(r.verification_token, self.mailed[-1])

    @rule(data=st.data())
    def verify_email(self, data: st.DataObject) -> None:
        self._verify(*self._mail_token(data, "verification"))

    @precondition(lambda self: any(t.purpose == "verification" for t in self.mailed))
    @rule(data=st.data())
    def verify_email_with_a_mailed_token(self, data: st.DataObject) -> None:
        t = data.draw(st.sampled_from([t for t in self.mailed if t.purpose == "verification"]))
        self._verify(t.token, t)

    def _verify(self, token: str, t: MToken | None) -> None:
        got = self.call(pb.VerifyEmailRequest(verification_token=token))
        if got.reason == "INVALID_ARGUMENT" or not token:
            assert got.reason == "INVALID_ARGUMENT" and not token, got
            return
        if self._expect_mail_token(got, t):
            assert t is not None
            t.user.verified = True
            self._same(got.response.user, t.user)
            self._audit(t.user, "EMAIL_VERIFIED")

    @precondition(lambda self: self.users)
    @rule(data=st.data())
    def audit_trail(self, data: st.DataObject) -> None:
        """A user's trail holds exactly the events the model predicts (of those it follows)."""
        user = data.draw(st.sampled_from(self.users))  # deleted users' events stay
        got = self.call(pb.ListAuditEventsRequest(user_id=user.id, page_size=1000))
        assert got.ok and not got.response.next_page_token, got
        events = got.response.audit_events
        assert all(e.user_id == user.id for e in events), got
        names = Counter(
            pb.AuditEventType.Name(e.type).removeprefix("AUDIT_EVENT_TYPE_") for e in events
        )
        assert {n: names[n] for n in AUDITED} == {n: self.audited[(user.id, n)] for n in AUDITED}

    # Sessions

    @precondition(lambda self: self.users)
    @rule(data=st.data(), agent=GOOD_AGENTS, ip=GOOD_IPS, right=st.booleans())
    def sign_in(self, data: st.DataObject, agent: str, ip: str, right: bool) -> None:
        user = data.draw(st.sampled_from(self.users))
        old = [st.sampled_from(user.old_passwords)] if user.old_passwords else []
        wrong = st.one_of(PASSWORDS, hostile_text, *old)  # a replaced password is wrong
        password = user.password if right else data.draw(wrong)
        got = self._sign_in(user, password, agent, ip)
        if self._throttled(user.email, got):
            return
        if user.alive and password == user.password and user.disabled:
            assert got.reason == "USER_DISABLED", got  # only the right password learns it
        elif user.alive and password == user.password:
            assert got.ok, got
            assert got.response.session.ip_address == (ip.strip() and str(ip_address(ip.strip())))
        else:
            assert got.reason in ("INVALID_CREDENTIALS", "INVALID_ARGUMENT"), got

    @precondition(lambda self: self.users)
    @rule(data=st.data(), agent=hostile_text, ip=st.one_of(BAD_IPS, hostile_text))
    def sign_in_from_anywhere(self, data: st.DataObject, agent: str, ip: str) -> None:
        user = data.draw(st.sampled_from(self.users))
        got = self._sign_in(user, user.password, agent, ip)
        if self._throttled(user.email, got):
            return
        refusals = ["INVALID_CREDENTIALS", "INVALID_ARGUMENT"]
        if user.alive and user.disabled:
            refusals.append("USER_DISABLED")
        assert got.ok or got.reason in refusals, got

    def _sign_in(self, user: MUser, password: str, agent: str, ip: str) -> Outcome:
        request = pb.CreateSessionRequest(
            email=user.email, password=password, user_agent=agent, ip_address=ip
        )
        got = self.call(request)
        if got.ok:
            assert user.alive and not user.disabled and password == user.password
            self._open(user, got)
        return got

    @rule(data=st.data())
    def validate(self, data: st.DataObject) -> None:
        token, s = self._session_token(data)
        got = self.call(pb.ValidateTokenRequest(session_token=token))
        self._expect_session(got, s)
        if got.ok:
            assert s is not None
            user = self.user(s.user_id)
            assert user is not None
            assert got.response.session.id == s.id
            self._same(got.response.user, user)  # no cached user outlives a change

    @rule(data=st.data())
    def refresh(self, data: st.DataObject) -> None:
        current = [(s.update, s, False) for s in self.sessions]
        rotated = [(t, s, True) for t, s in self.old_update_tokens.items()]
        wrong_kind = [(s.token, None, False) for s in self.sessions]
        pool = current + rotated + wrong_kind
        if pool and data.draw(st.integers(0, 3)):
            token, s, reused = data.draw(st.sampled_from(pool))
        else:
            token, s, reused = data.draw(hostile_text), None, False
        got = self.call(pb.RefreshSessionRequest(update_token=token))
        if s is None or not s.alive:
            assert got.reason in ("TOKEN_INVALID", "INVALID_ARGUMENT"), got
        elif reused:
            assert got.reason == "REFRESH_TOKEN_REUSED", got
            self._end_sessions(id=s.id)
        elif self.now >= s.refresh_expires:
            assert got.reason == "TOKEN_EXPIRED", got
        else:
            assert got.ok, got
            self.old_session_tokens.append(s.token)
            self.old_update_tokens[s.update] = s
            s.token, s.update = got.response.session_token, got.response.update_token
            s.expires = min(self.now + TTL, s.absolute)
            s.refresh_expires = min(self.now + REFRESH_TTL, s.absolute)

    @rule(data=st.data())
    def sign_out(self, data: st.DataObject) -> None:
        token, s = self._session_token(data)
        got = self.call(pb.DeleteSessionRequest(session_token=token))
        if s is not None and s.alive:
            assert got.ok, got  # even an expired session can be ended
            self._end_sessions(id=s.id)
            self._audit(s.user_id, "SIGNED_OUT")
        else:
            assert got.reason in ("TOKEN_INVALID", "INVALID_ARGUMENT"), got

    @rule(data=st.data(), new_password=NEW_PASSWORDS, right=st.booleans())
    def change_password(
        self, data: st.DataObject, new_password: tuple[str, bool], right: bool
    ) -> None:
        token, s = self._session_token(data)
        user = self.user(s.user_id) if s else None
        current = user.password if user and right else data.draw(PASSWORDS)
        new, acceptable = new_password
        if acceptable:
            self.live.secrets.passwords.add(new)
        request = pb.ChangePasswordRequest(
            session_token=token, current_password=current, new_password=new
        )
        got = self.call(request)
        if got.reason == "INVALID_ARGUMENT" or not acceptable or not token:
            assert got.reason == "INVALID_ARGUMENT" and (not acceptable or not token), got
            return
        if user is not None and self._throttled(user.email, got):
            return
        if s is not None and s.alive and self.now < s.expires and current != user.password:
            assert got.reason == "INVALID_CREDENTIALS", got
            return
        self._expect_session(got, s)
        if got.ok:
            assert user is not None and s is not None and current == user.password
            self._changed_password(user, s, new)

    @precondition(lambda self: any(s.alive for s in self.sessions))
    @rule(data=st.data(), new=PASSWORDS)
    def change_password_of_live_session(self, data: st.DataObject, new: str) -> None:
        s = data.draw(st.sampled_from([s for s in self.sessions if s.alive]))
        user = self.user(s.user_id)
        assert user is not None
        self.live.secrets.passwords.add(new)
        request = pb.ChangePasswordRequest(
            session_token=s.token, current_password=user.password, new_password=new
        )
        got = self.call(request)
        if self._throttled(user.email, got):
            return
        self._expect_session(got, s)
        if got.ok:
            self._changed_password(user, s, new)

    def _changed_password(self, user: MUser, s: MSession, new: str) -> None:
        """ChangePassword succeeded on ``s``: every other session of the user ends, and any
        unused reset token."""
        user.new_password(new)
        self._forget(user, "reset")
        self._gone(self._end_sessions(keep=lambda o: o is s, user_id=user.id))
        self._audit(user, "PASSWORD_CHANGED")

    @rule(data=st.data(), page_size=st.integers(0, 3), token=st.one_of(st.just(""), PAGE_TOKENS))
    def list_sessions(self, data: st.DataObject, page_size: int, token: str) -> None:
        user_id, user = self._user_id(data)
        request = pb.ListSessionsRequest(user_id=user_id, page_size=page_size, page_token=token)
        got = self.call(request)
        if user is None or not user.alive:
            assert got.reason in ("USER_NOT_FOUND", "INVALID_ARGUMENT"), got
            return
        if token:  # forged or foreign: refused, or (by chance) a valid cursor
            assert got.ok or got.reason == "INVALID_ARGUMENT", got
            return
        assert got.ok, got
        live = {
            s.id
            for s in self.sessions
            if s.user_id == user.id and s.alive and self.now < s.refresh_expires
        }
        listed = {s.id for s in got.response.sessions}
        assert listed <= live and len(listed) == min(len(live), page_size or 50)

    @rule(minutes=st.sampled_from([1, 5, 9, 10, 11, 29, 30, 61]))
    def advance_clock(self, minutes: int) -> None:
        self.live.clock.advance(timedelta(minutes=minutes))

    @invariant()
    def rotated_and_revoked_tokens_never_validate(self) -> None:
        for token in self.old_session_tokens[-3:]:
            got = self.call(pb.ValidateTokenRequest(session_token=token))
            assert got.reason == "TOKEN_INVALID", got


def test_random_call_sequences_match_the_model(live):
    AuthModel.live = live

    # A factory function, not the class: Hypothesis digests the source of what it is
    # given, and for a class that means ast.parse of this whole module, which CPython 3.11
    # can fail with "AST constructor recursion depth mismatch" in a worker that ran the
    # deep-nesting tests before; a function's source is found without the ast module.
    def new_model() -> AuthModel:
        return AuthModel()

    run_state_machine_as_test(
        new_model, settings=settings(max_examples=50, stateful_step_count=40, deadline=None)
    )
