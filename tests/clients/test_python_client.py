"""AuthClient against a real authsvc, and its retry policy against a fake failing server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import timedelta
from typing import Any

import grpc
import pytest

from authsvc.client import AuthClient, AuthClientError, RetryPolicy, service_config
from authsvc.runtime.assembly import create_server
from authsvc.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def auth_target(make_settings, clock) -> Iterator[str]:
    """The address of a real authsvc on port 0."""
    server, port = create_server(make_settings(), clock=clock)
    yield f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture
def client(auth_target: str) -> Iterator[AuthClient]:
    with AuthClient(auth_target, timeout=10) as c:
        yield c


def test_client_covers_the_whole_lifecycle(client: AuthClient):
    user = client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    assert client.get_user(user.id).email == "ada@example.com"
    assert client.update_user(user.id, first_name="Augusta").first_name == "Augusta"
    assert client.get_user(user.id).last_name == "Lovelace"  # outside the mask: unchanged
    assert [u.id for u in client.list_users().users] == [user.id]

    signed_in = client.create_session("ADA@example.com", PASSWORD, user_agent="test")
    validated = client.validate_token(signed_in.session_token)
    assert validated.user.id == user.id
    assert validated.session.user_agent == "test"
    assert len(client.list_sessions(user.id).sessions) == 1

    refreshed = client.refresh_session(signed_in.update_token)
    client.change_password(refreshed.session_token, PASSWORD, "a new and long passphrase")
    client.delete_session(refreshed.session_token)
    with pytest.raises(AuthClientError) as ended:
        client.validate_token(refreshed.session_token)
    assert ended.value.reason == "TOKEN_INVALID"

    client.delete_user(user.id)
    with pytest.raises(AuthClientError) as gone:
        client.get_user(user.id)
    assert (gone.value.code, gone.value.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


def test_client_covers_the_account_lifecycle(client: AuthClient):
    user = client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    started = client.start_password_reset("ada@example.com", ip_address="203.0.113.1")
    assert client.start_password_reset("nobody@example.com").reset_token == ""
    reset = client.complete_password_reset(started.reset_token, "a reset passphrase 1")
    assert reset.email_verified
    client.update_user(user.id, email="ada@new.example.com")
    token = client.start_email_verification(user.id).verification_token
    assert client.verify_email(token).email_verified

    s = client.create_session("ada@new.example.com", "a reset passphrase 1")
    client.revoke_session(s.session.id)
    client.create_session("ada@new.example.com", "a reset passphrase 1")
    assert client.revoke_user_sessions(user.id) == 1
    client.set_password(user.id, "an admin passphrase 2")
    assert client.disable_user(user.id).state == pb.USER_STATE_DISABLED
    with pytest.raises(AuthClientError) as refused:
        client.create_session("ada@new.example.com", "an admin passphrase 2")
    assert refused.value.reason == "USER_DISABLED"
    assert client.enable_user(user.id).state == pb.USER_STATE_ACTIVE
    assert client.create_session("ada@new.example.com", "an admin passphrase 2").session_token


def test_client_error_exposes_code_reason_and_fields(client: AuthClient):
    client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    with pytest.raises(AuthClientError) as taken:
        client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
    assert taken.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert taken.value.reason == "EMAIL_TAKEN"
    assert taken.value.domain == "authsvc"

    with pytest.raises(AuthClientError) as bad:
        client.create_user("not an email", "short", "", "Lovelace")
    assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in bad.value.violations} >= {"email", "password", "first_name"}

    with pytest.raises(AuthClientError) as wrong:
        client.create_session("ada@example.com", "wrong password!")
    assert wrong.value.reason == "INVALID_CREDENTIALS"
    assert "wrong password!" not in str(wrong.value)


# A fake AuthService whose methods fail UNAVAILABLE a given number of times.


class FlakyAuthService:
    """Counts attempts per method; fails the first ``failures[method]`` with ``code``."""

    def __init__(self, failures: dict[str, int], code=grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures = failures
        self.code = code
        self.attempts: dict[str, int] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()

    def handler(self, method: str, request_type: Any, response: Any) -> grpc.RpcMethodHandler:
        def behave(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.attempts[method] = self.attempts.get(method, 0) + 1
                attempt = self.attempts[method]
            if method == "Hang":
                self.release.wait(10)
            if attempt <= self.failures.get(method, 0):
                context.abort(self.code, f"attempt {attempt} fails")
            return response

        return grpc.unary_unary_rpc_method_handler(
            behave,
            request_deserializer=request_type.FromString,
            response_serializer=type(response).SerializeToString,
        )


@pytest.fixture
def flaky() -> Iterator[Callable[..., tuple[FlakyAuthService, AuthClient]]]:
    started: list[tuple[grpc.Server, FlakyAuthService, AuthClient]] = []

    def start(failures: dict[str, int], retry: RetryPolicy | None = FAST_RETRY, **kw: Any):
        fake = FlakyAuthService(failures, **kw)
        user = pb.User(id="u1", email="ada@example.com")
        handlers = {
            "GetUser": fake.handler("GetUser", pb.GetUserRequest, pb.GetUserResponse(user=user)),
            "ValidateToken": fake.handler(
                "ValidateToken", pb.ValidateTokenRequest, pb.ValidateTokenResponse(user=user)
            ),
            "CreateSession": fake.handler(
                "CreateSession", pb.CreateSessionRequest, pb.CreateSessionResponse(user=user)
            ),
            "RefreshSession": fake.handler(
                "RefreshSession", pb.RefreshSessionRequest, pb.RefreshSessionResponse()
            ),
            "ListUsers": fake.handler("Hang", pb.ListUsersRequest, pb.ListUsersResponse()),
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("authsvc.v1.AuthService", handlers)]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        client = AuthClient(f"127.0.0.1:{port}", timeout=10, retry=retry)
        started.append((server, fake, client))
        return fake, client

    yield start
    for server, fake, client in started:
        fake.release.set()
        client.close()
        server.stop(0)


def test_idempotent_calls_are_retried_on_unavailable(flaky):
    fake, client = flaky({"GetUser": 2, "ValidateToken": 3})
    assert client.get_user("u1").email == "ada@example.com"
    assert client.validate_token("token").user.id == "u1"
    assert fake.attempts == {"GetUser": 3, "ValidateToken": 4}


def test_retries_stop_after_max_attempts(flaky):
    fake, client = flaky({"GetUser": 10})
    with pytest.raises(AuthClientError) as caught:
        client.get_user("u1")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert fake.attempts == {"GetUser": FAST_RETRY.max_attempts}


def test_sign_in_and_refresh_are_never_retried(flaky):
    fake, client = flaky({"CreateSession": 1, "RefreshSession": 1})
    with pytest.raises(AuthClientError) as sign_in:
        client.create_session("ada@example.com", PASSWORD)
    with pytest.raises(AuthClientError) as refresh:
        client.refresh_session("update-token")
    assert sign_in.value.code == refresh.value.code == grpc.StatusCode.UNAVAILABLE
    assert fake.attempts == {"CreateSession": 1, "RefreshSession": 1}


def test_other_codes_are_not_retried(flaky):
    fake, client = flaky({"GetUser": 1}, code=grpc.StatusCode.INTERNAL)
    with pytest.raises(AuthClientError) as caught:
        client.get_user("u1")
    assert caught.value.code == grpc.StatusCode.INTERNAL
    assert caught.value.reason == ""  # no ErrorInfo from this server
    assert fake.attempts == {"GetUser": 1}


def test_retries_can_be_turned_off(flaky):
    fake, client = flaky({"GetUser": 1}, retry=None)
    with pytest.raises(AuthClientError):
        client.get_user("u1")
    assert fake.attempts == {"GetUser": 1}


def test_every_call_has_a_deadline(flaky):
    fake, client = flaky({})
    with pytest.raises(AuthClientError) as caught:
        client.list_users(timeout=0.2)  # the fake hangs on ListUsers
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake.attempts == {"Hang": 1}  # a deadline is not retried


def test_service_config_names_only_idempotent_methods():
    import json

    config = json.loads(service_config(RetryPolicy()))
    names = {n["method"] for c in config["methodConfig"] for n in c["name"]}
    assert names == {
        "GetUser",
        "ListUsers",
        "ValidateToken",
        "ListSessions",
        "ListAuditEvents",
        "ListPasskeys",
    }
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_retry_policy_rejects_what_grpc_would_ignore():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=6)
    with pytest.raises(ValueError, match="timeout"):
        AuthClient("127.0.0.1:1", timeout=0)


def test_client_imports_users_over_several_calls_with_paths_of_the_whole_list(client):
    from tests.flows.test_import import OLD_PASSWORD, django_hash

    old = django_hash(OLD_PASSWORD)
    users = [
        pb.ImportedUser(
            email=f"user{i}@example.com", first_name="Old", last_name="User", password_hash=old
        )
        for i in range(600)  # more than one 64 KiB message
    ]
    users[450].email = "not an email"
    results = client.import_users(users)
    assert len(results) == 600
    assert sum(1 for r in results if r.user_id) == 599
    assert [v.field for v in results[450].error.field_violations] == ["users[450].email"]
    again = client.import_users(users[:3])
    assert [pb.ErrorReason.Name(r.error.reason) for r in again] == ["ERROR_REASON_EMAIL_TAKEN"] * 3
    assert client.create_session("user7@example.com", OLD_PASSWORD).user.email == (
        "user7@example.com"
    )


def test_client_signs_in_with_totp_and_with_a_passkey(make_settings, clock):
    import pyotp
    from cryptography.fernet import Fernet

    from authsvc.rules.secrets_at_rest import SecretKeys
    from tests.webauthn_authenticator import SoftAuthenticator

    settings = make_settings(
        secret_key=SecretKeys.parse(Fernet.generate_key().decode()),
        webauthn_rp_id="example.com",
    )
    server, port = create_server(settings, clock=clock)
    try:
        with AuthClient(f"127.0.0.1:{port}", timeout=10) as client:
            client.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
            token = client.create_session("ada@example.com", PASSWORD).session_token
            enrolment = client.start_totp_enrollment(token)
            totp = pyotp.TOTP(enrolment.secret)
            codes = client.confirm_totp_enrollment(token, totp.at(clock.now))
            clock.advance(timedelta(seconds=30))
            challenge = client.create_session("ada@example.com", PASSWORD).challenge
            done = client.complete_sign_in(challenge.challenge_token, totp_code=totp.at(clock.now))
            assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2
            client.reauthenticate_session(done.session_token, password=PASSWORD)

            device = SoftAuthenticator("https://example.com")
            started = client.start_passkey_registration(done.session_token)
            passkey = client.finish_passkey_registration(
                started.challenge_token, device.create(started.options_json), "phone"
            )
            assert [p.id for p in client.list_passkeys(done.session_token)] == [passkey.id]
            started = client.start_passkey_sign_in()
            signed_in = client.finish_passkey_sign_in(
                started.challenge_token, device.get(started.options_json)
            )
            assert signed_in.user.email == "ada@example.com"
            client.remove_passkey(done.session_token, passkey.id)
            client.remove_totp(done.session_token, codes[0])
            assert client.create_session("ada@example.com", PASSWORD).session_token
    finally:
        server.stop(0)
