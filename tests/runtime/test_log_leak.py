"""No secret ever reaches the logs, whatever the log level.

Two checks: the whole suite's traffic (checked after every test by an autouse fixture,
fed by ``tests/leak_watch.py``), and the focused pass below.

A realistic pass over every RPC (failures included: bad input, wrong passwords, a
stolen update token, a malformed request, a statement that fails after its parameters
were bound) runs with every logger at DEBUG and SQLAlchemy's engine logger at INFO
(which echoes SQL statements and, unless hidden, their parameters). Then no password,
token, token hash (hex or raw) or password hash may appear in any log record.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, text

from authsvc.rules import challenges, webhooks
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.assembly import create_server
from authsvc.runtime.logs import configure_logging
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import PASSWORD, fails, sign_in, sign_up
from tests.leak_watch import WATCH, LeakWatch

NEW_PASSWORD = "another long passphrase 42"
WRONG_PASSWORD = "not the right one at all"
EXPLODE = "Explode"  # a first name whose INSERT the test makes fail after binding


def break_user_inserts(engine: Any) -> None:
    """Makes INSERTs of users named EXPLODE fail inside the database, parameters bound."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _break(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        if statement.startswith("INSERT INTO users") and EXPLODE in str(params):
            statement += " RETURNING no_such_column"
        return statement, params


def traffic(stub: Any, channel: grpc.Channel) -> tuple[set[str], set[str]]:
    """Every RPC, successes and failures; returns the passwords and tokens used."""
    passwords = {PASSWORD, NEW_PASSWORD, WRONG_PASSWORD}
    user = sign_up(stub)
    other = sign_up(stub, "bob@example.com")
    fails(stub.CreateUser, pb.CreateUserRequest(email="ada@example.com", password=PASSWORD))
    fails(stub.CreateUser, pb.CreateUserRequest(email="x@example.com", password="short"))
    fails(
        stub.CreateSession,
        pb.CreateSessionRequest(email="ada@example.com", password=WRONG_PASSWORD),
    )
    fails(
        stub.CreateSession, pb.CreateSessionRequest(email="nobody@example.com", password=PASSWORD)
    )
    first = sign_in(stub, user_agent="curl/8", ip_address="203.0.113.9")
    second = sign_in(stub)
    tokens = {first.session_token, first.update_token, second.session_token, second.update_token}
    stub.ValidateToken(pb.ValidateTokenRequest(session_token=first.session_token))
    fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=first.update_token))
    rotated = stub.RefreshSession(pb.RefreshSessionRequest(update_token=first.update_token))
    tokens |= {rotated.session_token, rotated.update_token}
    # Reusing the old update token looks like theft: the session is revoked.
    fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=first.update_token))
    fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=rotated.session_token))
    fails(
        stub.ChangePassword,
        pb.ChangePasswordRequest(
            session_token=second.session_token,
            current_password=WRONG_PASSWORD,
            new_password=NEW_PASSWORD,
        ),
    )
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=second.session_token, current_password=PASSWORD, new_password=NEW_PASSWORD
        )
    )
    third = sign_in(stub, password=NEW_PASSWORD)
    tokens |= {third.session_token, third.update_token}
    stub.GetUser(pb.GetUserRequest(id=user.id))
    stub.ListUsers(pb.ListUsersRequest(page_size=1))
    stub.ListSessions(pb.ListSessionsRequest(user_id=user.id))
    request = pb.UpdateUserRequest(user=pb.User(id=user.id, first_name="Augusta"))
    stub.UpdateUser(request)
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=third.session_token))
    fails(stub.DeleteSession, pb.DeleteSessionRequest(session_token=third.session_token))
    with pytest.raises(grpc.RpcError):
        sign_up_exploding(stub)
    raw = channel.unary_unary(
        "/authsvc.v1.AuthService/CreateSession",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError):  # the password field, ending in invalid UTF-8
        raw(b"\x12\x0c" + PASSWORD.encode()[:10] + b"\xff\xfe", timeout=10)
    stub.DeleteUser(pb.DeleteUserRequest(id=other.id))
    return passwords, tokens


def sign_up_exploding(stub: Any) -> None:
    stub.CreateUser(
        pb.CreateUserRequest(
            email="boom@example.com", password=PASSWORD, first_name=EXPLODE, last_name="X"
        ),
        timeout=10,
    )


def forms(passwords: set[str], tokens: set[str], hashes: set[str]) -> set[str]:
    """Each secret in every shape it could take in a log line."""
    found = set(passwords) | set(hashes)
    for token in tokens:
        digest = hashlib.sha256(token.encode()).digest()
        found |= {
            token,
            token.split("_", 2)[-1],  # the random body without its prefix
            digest.hex(),
            repr(digest)[2:-1],  # how bytes print: b'\x1f...'
            digest.decode("latin-1"),
            base64.b64encode(digest).decode(),
        }
    for password in passwords:
        found.add(repr(password)[1:-1])
    return found


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for ``record``."""
    formatted = logging.Formatter("%(message)s").format(record)
    return "\n".join((formatted, repr(record.args), repr(record.__dict__)))


def test_no_secret_reaches_the_logs_at_debug(make_settings, clock, database, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    server, port = create_server(make_settings(), clock=clock)
    break_user_inserts(server.infra.database.engine)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            passwords, tokens = traffic(pb_grpc.AuthServiceStub(channel), channel)
    finally:
        server.stop(0)
    with database.engine.connect() as conn:
        hashes = set(conn.scalars(text("SELECT password_hash FROM users")))
    assert hashes and tokens
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "no SQL logged"
    if "postgresql" in database.engine.url.drivername:  # SQLite reports UNAVAILABLE instead
        assert any(r.exc_info for r in caplog.records), "no traceback logged"
    secrets = forms(passwords, tokens, hashes)
    for record in caplog.records:
        logged = record_text(record)
        leaked = [s for s in secrets if s in logged]
        assert not leaked, f"{record.name} logged a secret: {record.getMessage()[:200]}"


def test_debug_log_level_keeps_sql_rows_and_parameters_out():
    # At DEBUG SQLAlchemy would log every result row (password hashes, token hashes).
    root, sql = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    saved = (root.level, list(root.handlers), sql.level)
    try:
        configure_logging("DEBUG", "text", io.StringIO())
        assert root.isEnabledFor(logging.DEBUG)
        assert sql.isEnabledFor(logging.INFO) and not sql.isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        sql.setLevel(saved[2])


def test_the_suite_watch_learns_this_tests_secrets_and_sees_its_log_records(stub):
    """Every test is checked after it runs (``tests/conftest.py``); this one checks the
    watch itself: it learns the secrets of this test's calls and records what they log,
    none of which leaks. It reads only its own records (``mark``), never what tests
    before it logged, so it holds whatever ran before it, in whatever order."""
    since = WATCH.mark()
    sign_up(stub, email="watched@example.com")
    signed_in = sign_in(stub, email="watched@example.com")
    assert signed_in.session_token in WATCH.tokens and PASSWORD in WATCH.passwords
    assert WATCH.mark() > since  # this test's calls were logged
    assert WATCH.leaks(since) == []


def test_the_watch_finds_a_leaked_token_its_hash_and_a_password():
    watch = LeakWatch()
    request = pb.CreateSessionRequest(email="a@example.com", password=PASSWORD)
    token = "asv_st_" + "A" * 43
    watch.note_call(request, pb.CreateSessionResponse(session_token=token))
    since = watch.mark()
    watch.emit(logging.makeLogRecord({"msg": f"oops {token}"}))
    digest = hashlib.sha256(token.encode()).hexdigest()
    watch.emit(logging.makeLogRecord({"msg": "hash %s", "args": (digest,)}))
    watch.emit(logging.makeLogRecord({"msg": "login", "password": PASSWORD}))
    assert sorted(watch.leaks(since)) == sorted(
        [f"token {token[:10]}…", f"token hash {digest[:8]}…", f"password {PASSWORD[:2]}…"]
    )
    assert watch.leaks(watch.mark()) == []


def test_the_watch_learns_api_keys_from_metadata_and_from_the_command_line():
    watch = LeakWatch()
    sent = "asv_ak_" + "B" * 43
    malformed = "my-old-shared-secret"
    watch.note_metadata((("x-api-key", sent), ("x-other", "asv_ak_" + "C" * 43)))
    watch.note_metadata((("x-api-key", malformed),))
    printed = "asv_ak_" + "D" * 43  # as `authsvc api-key create` prints it
    watch.learn(printed)
    since = watch.mark()
    for secret in (sent, malformed, printed):
        watch.emit(logging.makeLogRecord({"msg": "caller %s", "args": (secret,)}))
    digest = hashlib.sha256(printed.encode()).hexdigest()
    watch.emit(logging.makeLogRecord({"msg": "lookup", "key_hash": digest}))
    assert sorted(watch.leaks(since)) == sorted(
        [
            f"token {sent[:10]}…",
            f"API key {sent[:9]}…",
            f"API key {malformed[:9]}…",
            f"token {printed[:10]}…",
            f"token hash {digest[:8]}…",
        ]
    )
    assert watch.tokens == {sent, printed}  # not the header it was not sent in


def test_the_watch_finds_second_factor_secrets():
    watch = LeakWatch()
    secret, recovery = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "abcd-efgh-ijkm-npqr"
    watch.note_call(
        pb.StartTotpEnrollmentRequest(session_token="asv_st_" + "B" * 43),
        pb.StartTotpEnrollmentResponse(secret=secret),
    )
    watch.note_call(pb.ConfirmTotpEnrollmentRequest(code="123456"), None)  # wrong: no secret
    watch.note_call(
        pb.ConfirmTotpEnrollmentRequest(code="654321"),
        pb.ConfirmTotpEnrollmentResponse(recovery_codes=[recovery]),
    )
    challenge = "asv_ct_" + "C" * 43
    watch.note_call(
        pb.CreateSessionRequest(email="a@example.com", password=PASSWORD),
        pb.CreateSessionResponse(challenge=pb.SignInChallenge(challenge_token=challenge)),
    )
    since = watch.mark()
    for line in (f"seed {secret}", "code=654321", f"codes {recovery}", f"c {challenge}"):
        watch.emit(logging.makeLogRecord({"msg": line}))
    watch.emit(logging.makeLogRecord({"msg": "port 123456 at 10:00:00.654321"}))
    assert sorted(watch.leaks(since)) == sorted(
        ["code JB…", "code 65…", "code ab…", f"token {challenge[:10]}…"]
    )


def test_the_watch_finds_a_leaked_webhook_secret_and_sealed_passkey_challenge():
    watch = LeakWatch()
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    soon = datetime.now(UTC) + timedelta(minutes=5)
    # Made as authsvc makes them: their real prefixes and shapes.
    secret, printed = webhooks.new_secret(), webhooks.new_secret()
    sealed = challenges.seal(keys, b"c" * 32, "a@example.com", soon)
    sent_back = challenges.seal(keys, b"d" * 32, "", soon)
    watch.note_call(
        pb.CreateWebhookRequest(url="https://example.com/hooks"),
        pb.CreateWebhookResponse(secret=secret),
    )
    watch.note_call(
        pb.StartPasskeySignInRequest(email="a@example.com"),
        pb.StartPasskeySignInResponse(challenge_token=sealed),
    )
    watch.note_call(pb.FinishPasskeySignInRequest(challenge_token=sent_back), None)  # refused
    watch.learn(printed)  # as `authsvc webhook add` prints it
    key = base64.b64decode(secret.removeprefix("whsec_"))
    leaks = {
        secret: f"webhook secret {secret[:8]}…",
        secret.removeprefix("whsec_"): f"webhook secret {secret[:8]}…",  # the signing key
        key.hex(): f"webhook secret {secret[:8]}…",
        printed: f"webhook secret {printed[:8]}…",
        sealed: f"sealed challenge {sealed[:9]}…",
        sealed.removeprefix("asv_pc_"): f"sealed challenge {sealed[:9]}…",
        sent_back: f"sealed challenge {sent_back[:9]}…",
    }
    for leaked, described in leaks.items():
        since = watch.mark()
        watch.emit(logging.makeLogRecord({"msg": "value %s", "args": (leaked,)}))
        assert watch.leaks(since) == [described]
    assert watch.codes == set()  # a webhook secret is watched as such, not as a TOTP seed


def test_the_suite_watch_learns_webhook_secrets_and_sealed_challenges_from_calls(start_server):
    _, stub = start_server(
        secret_key=SecretKeys.parse(Fernet.generate_key().decode()),
        webhook_allow_private=True,
        webauthn_rp_id="auth.example.com",
    )
    hook = pb.CreateWebhookRequest(url="http://127.0.0.1:9/hooks")
    secret = stub.CreateWebhook(hook, timeout=10).secret
    started = stub.StartPasskeySignIn(pb.StartPasskeySignInRequest(), timeout=10)
    assert secret in WATCH.webhook_secrets
    assert started.challenge_token in WATCH.sealed_challenges
