"""Webhook rules without a server: URLs and addresses (SSRF), the retry schedule, signing."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from authsvc.rules import webhooks
from authsvc.rules.values import Rejected
from authsvc.rules.webhook_deliveries import retry_delay
from authsvc.rules.webhook_urls import is_public, parse, resolve_public, webhook_url
from authsvc.runtime.settings import DEFAULT_WEBHOOK_RETRIES, load_settings


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fc00::1",
        "::",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
    ],
)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_global_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_a_name_is_refused_if_any_of_its_addresses_is_private() -> None:
    def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]

    target = parse("https://hooks.example.com/in")
    with pytest.raises(Rejected, match=r"10\.0\.0\.7"):
        resolve_public(target, allow_private=False, resolver=resolver)
    assert str(resolve_public(target, allow_private=True, resolver=resolver)) == "93.184.216.34"


def test_an_unresolvable_name_is_accepted_at_creation_and_checked_when_sent() -> None:
    def nowhere(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        raise OSError("Name or service not known")

    assert webhook_url("https://later.example.com/", False, nowhere) == "https://later.example.com/"


def test_parse_keeps_the_path_and_query_and_the_default_port() -> None:
    target = parse("https://hooks.example.com/in?a=1")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        443,
        "/in?a=1",
    )
    assert parse("http://[2606:4700::1111]:8080").path == "/"


def test_the_default_schedule_retries_for_a_day_and_first_within_ten_seconds() -> None:
    schedule = load_settings(environ={}).webhook_retry_schedule
    assert schedule == DEFAULT_WEBHOOK_RETRIES
    assert sum(schedule, timedelta()) >= timedelta(hours=24)  # jitter only lengthens it
    assert schedule[0] * 1.2 <= timedelta(seconds=10)


def test_retry_delays_follow_the_schedule_with_jitter_then_stop() -> None:
    schedule = (timedelta(seconds=5), timedelta(minutes=5))
    assert retry_delay(schedule, 1, lambda low, high: low) == timedelta(seconds=5)
    assert retry_delay(schedule, 2, lambda low, high: high) == timedelta(minutes=6)
    assert retry_delay(schedule, 3) is None
    for _ in range(100):
        delay = retry_delay(schedule, 1)
        assert delay is not None and timedelta(seconds=5) <= delay <= timedelta(seconds=6)


def test_signed_headers_verify_with_the_standard_webhooks_library() -> None:
    secret = webhooks.new_secret()
    event_id, now, body = uuid.uuid4(), datetime.now(UTC), '{"type":"user.created"}'
    headers = webhooks.signed_headers(secret, event_id, now, body)
    assert headers["webhook-id"] == str(event_id)
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Verifier(secret).verify(body, headers) == {"type": "user.created"}
    assert webhooks.new_secret() != secret


def test_event_types_must_be_known_and_are_deduplicated() -> None:
    assert webhooks.event_types(["user.created", "user.created", "webhook.deleted"]) == (
        "user.created",
        "webhook.deleted",
    )
    with pytest.raises(Rejected, match=r"user\.exploded"):
        webhooks.event_types(["user.exploded"])
    with pytest.raises(Rejected, match="at most"):
        webhooks.event_types(["user.created"] * 65)
