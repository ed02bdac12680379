"""AuthClient's deadlines, retry policy and API key, against a fake AuthService."""

from __future__ import annotations

import json

import grpc
import pytest

from authsvc_client import AuthClient, AuthClientError, RetryPolicy, service_config
from fake_auth import FAST_RETRY, StartFake


def test_idempotent_calls_are_retried_on_unavailable(fake: StartFake):
    service, client = fake({"GetUser": 2, "ValidateToken": 3})
    assert client.get_user("u1").email == "ada@example.com"
    assert client.validate_token("token").user.id == "u1"
    assert service.attempts == {"GetUser": 3, "ValidateToken": 4}


def test_retries_stop_after_max_attempts(fake: StartFake):
    service, client = fake({"GetUser": 10})
    with pytest.raises(AuthClientError) as caught:
        client.get_user("u1")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert service.attempts == {"GetUser": FAST_RETRY.max_attempts}


def test_sign_in_and_refresh_are_never_retried(fake: StartFake):
    service, client = fake({"CreateSession": 1, "RefreshSession": 1})
    with pytest.raises(AuthClientError) as sign_in:
        client.create_session("ada@example.com", "a password")
    with pytest.raises(AuthClientError) as refresh:
        client.refresh_session("update-token")
    assert sign_in.value.code == refresh.value.code == grpc.StatusCode.UNAVAILABLE
    assert service.attempts == {"CreateSession": 1, "RefreshSession": 1}


def test_other_codes_are_not_retried(fake: StartFake):
    service, client = fake({"GetUser": 1}, code=grpc.StatusCode.INTERNAL)
    with pytest.raises(AuthClientError) as caught:
        client.get_user("u1")
    assert caught.value.code == grpc.StatusCode.INTERNAL
    assert caught.value.reason == ""  # no ErrorInfo from this server
    assert service.attempts == {"GetUser": 1}


def test_retries_can_be_turned_off(fake: StartFake):
    service, client = fake({"GetUser": 1}, retry=None)
    with pytest.raises(AuthClientError):
        client.get_user("u1")
    assert service.attempts == {"GetUser": 1}


def test_every_call_has_a_deadline(fake: StartFake):
    service, client = fake()
    with pytest.raises(AuthClientError) as caught:
        client.list_users(timeout=0.2)  # the fake hangs on ListUsers
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert service.attempts == {"ListUsers": 1}  # a deadline is not retried


def test_service_config_names_only_idempotent_methods():
    config = json.loads(service_config(RetryPolicy()))
    names = {n["method"] for c in config["methodConfig"] for n in c["name"]}
    assert names == {
        "GetUser",
        "ListUsers",
        "ValidateToken",
        "ListSessions",
        "ListAuditEvents",
        "ListPasskeys",
        "ListEvents",
        "ListWebhooks",
        "ListWebhookDeliveries",
    }
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_retry_policy_rejects_what_grpc_would_ignore():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=6)
    with pytest.raises(ValueError, match="timeout"):
        AuthClient("127.0.0.1:1", timeout=0)


def test_api_key_is_sent_on_every_call_and_every_retry(fake: StartFake):
    service, client = fake({"GetUser": 1}, api_key="asv_ak_example")
    client.get_user("u1")
    client.create_user("ada@example.com", "a password", "Ada", "Lovelace")
    client.validate_token("token")
    assert len(service.metadata) == 4
    assert all(m.get("x-api-key") == "asv_ak_example" for m in service.metadata)


def test_without_api_key_no_key_is_sent(fake: StartFake):
    service, client = fake()
    client.get_user("u1")
    assert "x-api-key" not in service.metadata[0]


@pytest.mark.parametrize("key", ["", " padded ", "two\nlines", "clé"])
def test_api_key_that_metadata_cannot_carry_is_refused_without_echoing_it(key: str):
    with pytest.raises(ValueError, match="api_key") as caught:
        AuthClient("127.0.0.1:1", api_key=key)
    assert not key.strip() or key.strip() not in str(caught.value)
