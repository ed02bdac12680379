"""Brute-force throttling of sign-ins, as a caller observes it, on both databases.

The server's clock is the FakeClock ``clock``: delays pass by advancing it, never by
sleeping.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select

from authsvc.errors import Overloaded
from authsvc.rules.throttle_policies import sign_in_throttle
from authsvc.rules.throttling import ThrottlePolicy
from authsvc.runtime.settings import ConfigError, load_settings
from authsvc.storage.models import ThrottleCounter, ThrottleFailure
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import events
from tests.helpers import PASSWORD, fails, failure, sign_in, sign_up

WRONG = "not the password"
ADA = "ada@example.com"
IP = "192.0.2.55"


def attempt(stub, email=ADA, password=WRONG, **kw):
    """Signs in; returns "OK", or the failure's reason and its RetryInfo delay."""
    try:
        sign_in(stub, email=email, password=password, **kw)
    except grpc.RpcError as error:
        return failure(error).reason, retry_delay(error)
    return "OK", None


def retry_delay(error):
    """The google.rpc.RetryInfo delay of a failed call, or None."""
    status = rpc_status.from_call(error)
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta()
    return None


def fail_times(stub, n, email=ADA, **kw):
    for _ in range(n):
        assert attempt(stub, email, **kw) == ("INVALID_CREDENTIALS", None)


def throttled(seconds):
    return ("TOO_MANY_ATTEMPTS", timedelta(seconds=seconds))


def counter(database, email=ADA):
    digest = hashlib.sha256(f"account\0{email}".encode()).digest()
    with database.transaction(writes=False) as db:
        return db.scalar(select(ThrottleCounter).where(ThrottleCounter.key == digest))


def test_five_failures_then_refused_with_retry_info(stub, clock):
    sign_up(stub)
    fail_times(stub, 5)
    with pytest.raises(grpc.RpcError) as caught:
        sign_in(stub)  # the right password
    f = failure(caught.value)
    assert (f.code, f.reason, f.domain) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_ATTEMPTS",
        "authsvc",
    )
    assert retry_delay(caught.value) == timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    assert attempt(stub, password=PASSWORD) == ("OK", None)


def test_throttled_attempt_runs_no_hash(server_and_stub, clock):
    server, stub = server_and_stub
    sign_up(stub)
    fail_times(stub, 5)
    calls = []
    verify = server.infra.hasher.verify
    server.infra.hasher.verify = lambda *a: calls.append(1) or verify(*a)
    assert attempt(stub, password=PASSWORD) == throttled(1)
    assert attempt(stub, email="nobody@example.com") == ("INVALID_CREDENTIALS", None)
    assert calls == [1]  # only the unthrottled attempt hashed


def test_attempts_that_could_not_be_checked_are_not_counted(server_and_stub, database):
    server, stub = server_and_stub
    sign_up(stub)
    fail_times(stub, 4, ip_address=IP)
    verify = server.infra.hasher.verify

    def overloaded(*args):
        raise Overloaded()

    server.infra.hasher.verify = overloaded
    for _ in range(10):
        assert attempt(stub, ip_address=IP) == ("OVERLOADED", None)
    assert counter(database).failures == 4
    server.infra.hasher.verify = verify
    fail_times(stub, 1, ip_address=IP)  # the fifth failure, so now a delay
    assert counter(database).failures == 5
    server.infra.hasher.verify = overloaded
    assert attempt(stub, ip_address=IP) == throttled(1)
    with database.transaction(writes=False) as db:
        assert db.scalar(select(func.count()).select_from(ThrottleFailure)) == 10


def test_delay_doubles_up_to_fifteen_minutes(stub, clock):
    sign_up(stub)
    fail_times(stub, 5)
    seen = []
    for _ in range(13):
        reason, delay = attempt(stub, password=PASSWORD)
        assert reason == "TOO_MANY_ATTEMPTS"
        seen.append(delay.total_seconds())
        clock.advance(delay)
        fail_times(stub, 1)
    assert seen == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


def test_refused_attempts_neither_count_nor_extend_the_delay(stub, clock, database):
    sign_up(stub)
    fail_times(stub, 5)
    for _ in range(20):
        assert attempt(stub) == throttled(1)
    clock.advance(timedelta(milliseconds=600))
    assert attempt(stub) == ("TOO_MANY_ATTEMPTS", timedelta(milliseconds=400))
    assert counter(database).failures == 5
    clock.advance(timedelta(milliseconds=400))
    assert attempt(stub, password=PASSWORD) == ("OK", None)


def test_success_resets_the_count(stub, clock, database):
    sign_up(stub)
    for _ in range(3):
        fail_times(stub, 4)
        assert attempt(stub, password=PASSWORD) == ("OK", None)
    fail_times(stub, 5)
    clock.advance(timedelta(seconds=1))
    assert attempt(stub, password=PASSWORD) == ("OK", None)
    assert counter(database).failures == 0
    fail_times(stub, 4)
    assert attempt(stub, password=PASSWORD) == ("OK", None)


def test_unknown_emails_are_throttled_like_known_ones(stub, clock):
    sign_up(stub)
    known = [attempt(stub, ADA) for _ in range(7)]
    unknown = [attempt(stub, "nobody@example.com") for _ in range(7)]
    assert known == unknown == [("INVALID_CREDENTIALS", None)] * 5 + [throttled(1)] * 2


def test_accounts_are_counted_by_normalized_email(stub):
    sign_up(stub)
    for email in ("ADA@example.com", " ada@EXAMPLE.com", ADA, "Ada@Example.Com", ADA):
        assert attempt(stub, email) == ("INVALID_CREDENTIALS", None)
    assert attempt(stub, "ADA@EXAMPLE.COM", PASSWORD) == throttled(1)


def test_other_accounts_are_not_affected(stub):
    sign_up(stub)
    sign_up(stub, "bob@example.com")
    fail_times(stub, 5)
    assert attempt(stub, "bob@example.com", PASSWORD) == ("OK", None)


def test_concurrent_failures_all_count(start_server, database):
    _, stub = start_server(throttle_account_threshold=50)
    sign_up(stub)
    barrier = threading.Barrier(12)
    results = []

    def run():
        barrier.wait()
        results.append(attempt(stub))

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [("INVALID_CREDENTIALS", None)] * 12
    assert counter(database).failures == 12
    with database.transaction(writes=False) as db:
        assert db.scalar(select(func.count()).select_from(ThrottleFailure)) == 12


def test_concurrent_attempts_never_slip_past_the_threshold(stub):
    sign_up(stub)
    barrier = threading.Barrier(10)
    results = []

    def run():
        barrier.wait()
        results.append(attempt(stub)[0])

    threads = [threading.Thread(target=run) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each attempt is counted before its hash, under a lock: exactly 5 get checked.
    assert sorted(results) == ["INVALID_CREDENTIALS"] * 5 + ["TOO_MANY_ATTEMPTS"] * 5


def test_at_most_100_failures_per_account_per_hour(start_server, clock):
    # No exponential delay here, to reach the hourly cap alone.
    _, stub = start_server(throttle_account_threshold=1000)
    sign_up(stub)
    for _ in range(100):
        assert attempt(stub) == ("INVALID_CREDENTIALS", None)
        clock.advance(timedelta(seconds=30))
    # The first failure leaves the sliding hour 10 minutes from now.
    assert attempt(stub, password=PASSWORD) == throttled(600)
    clock.advance(timedelta(minutes=10))
    assert attempt(stub) == ("INVALID_CREDENTIALS", None)
    assert attempt(stub) == throttled(30)


def test_account_cap_is_a_setting(start_server, clock):
    _, stub = start_server(
        throttle_account_threshold=1000,
        throttle_account_limit=3,
        throttle_account_window=timedelta(minutes=10),
    )
    sign_up(stub)
    fail_times(stub, 3)
    assert attempt(stub, password=PASSWORD) == throttled(600)


def test_ip_limit_spans_accounts(stub, clock):
    sign_up(stub)
    ip = {"ip_address": "203.0.113.7"}
    for i in range(50):
        assert attempt(stub, f"user{i}@example.com", **ip) == ("INVALID_CREDENTIALS", None)
    assert attempt(stub, ADA, PASSWORD, **ip) == throttled(15 * 60)
    # Another address, or none (the calling service's own traffic), is not limited.
    assert attempt(stub, ADA, PASSWORD, ip_address="203.0.113.8") == ("OK", None)
    assert attempt(stub, ADA, PASSWORD) == ("OK", None)
    clock.advance(timedelta(minutes=15))
    assert attempt(stub, ADA, PASSWORD, **ip) == ("OK", None)


def test_ip_addresses_are_counted_in_canonical_form(start_server):
    _, stub = start_server(throttle_ip_limit=2)
    fail_times(stub, 1, "a@example.com", ip_address="2001:db8::1")
    fail_times(stub, 1, "b@example.com", ip_address="2001:DB8:0:0::0:1")
    assert attempt(stub, "c@example.com", ip_address=" 2001:db8::1") == throttled(15 * 60)


def test_success_does_not_clear_other_failures_of_its_ip(start_server):
    _, stub = start_server(throttle_ip_limit=3)
    sign_up(stub)
    ip = {"ip_address": "198.51.100.1"}
    fail_times(stub, 2, "x@example.com", **ip)
    assert attempt(stub, ADA, PASSWORD, **ip) == ("OK", None)
    fail_times(stub, 1, "y@example.com", **ip)
    assert attempt(stub, ADA, PASSWORD, **ip)[0] == "TOO_MANY_ATTEMPTS"


def test_old_failures_are_forgotten_after_a_quiet_day(stub, clock):
    sign_up(stub)
    fail_times(stub, 4)
    clock.advance(timedelta(days=1))
    fail_times(stub, 1)  # counts as the first again, so no delay follows
    assert attempt(stub, password=PASSWORD) == ("OK", None)


def test_limits_hold_across_replicas(start_server):
    _, first = start_server()
    _, second = start_server()
    sign_up(first)
    fail_times(first, 3)
    fail_times(second, 2)
    assert attempt(first, password=PASSWORD) == throttled(1)
    assert attempt(second, password=PASSWORD) == throttled(1)


def change_password(stub, token, current, new="a brand new passphrase"):
    request = pb.ChangePasswordRequest(
        session_token=token, current_password=current, new_password=new
    )
    return stub.ChangePassword(request, timeout=10)


def test_change_password_is_throttled_with_the_account(stub, clock):
    sign_up(stub)
    token = sign_in(stub).session_token
    for _ in range(5):
        request = pb.ChangePasswordRequest(
            session_token=token, current_password=WRONG, new_password="another passphrase"
        )
        assert fails(stub.ChangePassword, request).reason == "INVALID_CREDENTIALS"
    with pytest.raises(grpc.RpcError) as caught:
        change_password(stub, token, PASSWORD)
    assert failure(caught.value).reason == "TOO_MANY_ATTEMPTS"
    assert retry_delay(caught.value) == timedelta(seconds=1)
    # The same account's sign-ins wait too: it is one password guessed two ways.
    assert attempt(stub, password=PASSWORD) == throttled(1)
    clock.advance(timedelta(seconds=1))
    change_password(stub, token, PASSWORD)
    fail_times(stub, 4)  # the success reset the count
    assert attempt(stub, password="a brand new passphrase") == ("OK", None)


def test_a_password_step_up_is_throttled_with_the_account(stub, clock, database):
    sign_up(stub)
    token = sign_in(stub).session_token
    wrong = pb.ReauthenticateSessionRequest(session_token=token, password=WRONG)
    for _ in range(5):
        assert fails(stub.ReauthenticateSession, wrong).reason == "INVALID_CREDENTIALS"
    right = pb.ReauthenticateSessionRequest(session_token=token, password=PASSWORD)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReauthenticateSession(right, timeout=10)
    assert failure(caught.value).reason == "TOO_MANY_ATTEMPTS"
    assert retry_delay(caught.value) == timedelta(seconds=1)
    assert attempt(stub, password=PASSWORD) == throttled(1)  # one password, guessed two ways
    assert (
        events(database, "REAUTHENTICATION_FAILED"),
        events(database, "REAUTHENTICATION_THROTTLED"),
    ) == (5, 1)
    clock.advance(timedelta(seconds=1))
    stub.ReauthenticateSession(right, timeout=10)
    fail_times(stub, 4)  # the success reset the count
    assert attempt(stub, password=PASSWORD) == ("OK", None)


def test_throttling_state_holds_no_email_or_address(stub, database):
    sign_up(stub)
    fail_times(stub, 2, ip_address="192.0.2.1")
    with database.transaction(writes=False) as db:
        rows = list(db.scalars(select(ThrottleCounter)))
    assert len(rows) == 2
    assert all(len(r.key) == 32 and b"example" not in r.key for r in rows)


def test_bad_requests_are_not_counted(stub, database):
    sign_up(stub)
    for _ in range(10):
        assert fails(stub.CreateSession, pb.CreateSessionRequest(email=ADA)).fields == ["password"]
    assert counter(database) is None
    assert attempt(stub, password=PASSWORD) == ("OK", None)


def test_delay_schedule():
    policy = sign_in_throttle(load_settings({}))
    delays = [policy.delay(n).total_seconds() for n in range(4, 17)]
    assert delays == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert policy.delay(10**6) == timedelta(minutes=15)


def test_thresholds_are_settings():
    s = load_settings(
        {
            "AUTHSVC_THROTTLE_ACCOUNT_THRESHOLD": "3",
            "AUTHSVC_THROTTLE_BASE_DELAY": "2s",
            "AUTHSVC_THROTTLE_MAX_DELAY": "1h",
            "AUTHSVC_THROTTLE_ACCOUNT_LIMIT": "20",
            "AUTHSVC_THROTTLE_ACCOUNT_WINDOW": "2h",
            "AUTHSVC_THROTTLE_IP_LIMIT": "500",
            "AUTHSVC_THROTTLE_IP_WINDOW": "5m",
            "AUTHSVC_THROTTLE_FORGET_AFTER": "7d",
        }
    )
    p = sign_in_throttle(s)
    assert p == ThrottlePolicy(
        scope="account",
        threshold=3,
        base_delay=timedelta(seconds=2),
        max_delay=timedelta(hours=1),
        subject_limit=20,
        subject_window=timedelta(hours=2),
        ip_limit=500,
        ip_window=timedelta(minutes=5),
        forget_after=timedelta(days=7),
    )
    assert sign_in_throttle(load_settings({})).threshold == 5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTHSVC_THROTTLE_ACCOUNT_THRESHOLD", "0"),
        ("AUTHSVC_THROTTLE_IP_LIMIT", "-1"),
        ("AUTHSVC_THROTTLE_IP_WINDOW", "0s"),
        ("AUTHSVC_THROTTLE_BASE_DELAY", "1h"),
        ("AUTHSVC_THROTTLE_MAX_DELAY", "soon"),
    ],
)
def test_bad_throttle_settings_are_named(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_python_client_reads_retry_after_and_lists_audit_events(server_and_stub, clock):
    from authsvc_client import AuthClient, AuthClientError

    server, stub = server_and_stub
    sign_up(stub)
    fail_times(stub, 5)
    clock.advance(timedelta(milliseconds=500))  # so the throttled event is the newest
    with AuthClient(f"127.0.0.1:{server.port}", timeout=10) as client:
        with pytest.raises(AuthClientError) as caught:
            client.create_session(ADA, PASSWORD)
        assert caught.value.reason == "TOO_MANY_ATTEMPTS"
        assert caught.value.retry_after == timedelta(milliseconds=500)
        events = client.list_audit_events(page_size=1)
    assert events.audit_events[0].type == pb.AUDIT_EVENT_TYPE_SIGN_IN_THROTTLED
    assert events.next_page_token
