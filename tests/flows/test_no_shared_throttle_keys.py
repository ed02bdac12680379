"""No throttle key is shared by everyone: a stranger's wrong secrets never make somebody
else's right secret fail (issue 17)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from authsvc.runtime.settings import load_settings
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import (
    NEW_PASSWORD,
    complete_reset,
    events,
    start_reset,
    start_verification,
)
from tests.flows.test_secret_check import retry_delay
from tests.helpers import PASSWORD, failure, sign_up

#: The old service-wide budget of wrong tokens per purpose was 1000 an hour; one more.
BOGUS_CALLS = 1001


#: Outcomes that say nothing about the token: the machine was too busy (a shared
#: PostgreSQL out of connections, a full hash queue; gRPC's own statuses, which carry
#: no ErrorInfo, by their code). Such a call is made again.
TRANSIENT = frozenset(
    {"DATABASE_UNAVAILABLE", "OVERLOADED", "DEADLINE_EXCEEDED", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}
)


def reasons(calls: list[tuple[object, object]]) -> Counter[str]:
    """Makes each (method, request) call, four at a time; counts the outcomes (failure
    reasons, or "OK"). Of 2002 calls one may meet a busy machine: each is tried up to
    three times while its outcome is transient."""

    def once(method: Any, request: object) -> str:
        try:
            method(request, timeout=60)
        except grpc.RpcError as exc:
            if rpc_status.from_call(exc) is None:  # type: ignore[arg-type]
                return str(exc.code().name)  # from gRPC itself: no ErrorInfo
            return failure(exc).reason
        return "OK"

    def call(pair: tuple[object, object]) -> str:
        outcome = "DEADLINE_EXCEEDED"
        for _ in range(3):
            outcome = once(*pair)
            if outcome not in TRANSIENT:
                break
        return outcome

    with ThreadPoolExecutor(4) as pool:
        return Counter(pool.map(call, calls))


def test_a_strangers_wrong_tokens_never_block_a_victims_right_ones(stub, database):
    victim = sign_up(stub)
    bogus = [
        (
            stub.CompletePasswordReset,
            pb.CompletePasswordResetRequest(
                reset_token=f"asv_rt_{n:043d}", new_password=NEW_PASSWORD
            ),
        )
        for n in range(BOGUS_CALLS)
    ] + [
        (stub.VerifyEmail, pb.VerifyEmailRequest(verification_token=f"asv_vt_{n:043d}"))
        for n in range(BOGUS_CALLS)
    ]
    # The stranger calls the open RPCs without an ip_address, as in the attack.
    assert reasons(bogus) == Counter({"TOKEN_INVALID": 2 * BOGUS_CALLS})
    verification = start_verification(stub, victim.id).verification_token
    reset = start_reset(stub).reset_token
    verified = stub.VerifyEmail(
        pb.VerifyEmailRequest(verification_token=verification, ip_address="198.51.100.20"),
        timeout=10,
    )
    assert verified.user.email_verified
    complete_reset(stub, reset, ip_address="198.51.100.20")
    assert events(database, "PASSWORD_RESET_COMPLETED") == 1
    assert events(database, "PASSWORD_RESET_THROTTLED") == 0
    assert events(database, "EMAIL_VERIFICATION_THROTTLED") == 0


def test_sign_ups_are_throttled_per_end_user_address(start_server, database):
    _, stub = start_server(sign_up_limit=2)
    for n in range(2):
        sign_up_from(stub, f"user{n}@example.com", "203.0.113.5")
    with pytest.raises(grpc.RpcError) as caught:
        sign_up_from(stub, "user2@example.com", "203.0.113.5")
    assert failure(caught.value).reason == "TOO_MANY_ATTEMPTS"
    assert timedelta(minutes=59) < retry_delay(caught.value) <= timedelta(hours=1)
    assert events(database, "SIGN_UP_THROTTLED") == 1
    sign_up_from(stub, "user2@example.com", "203.0.113.6")  # another address is not blocked


def test_the_sign_up_budget_is_a_setting_of_twenty_an_hour():
    assert load_settings({}).sign_up_limit == 20
    assert load_settings({"AUTHSVC_SIGN_UP_LIMIT": "3"}).sign_up_limit == 3


def sign_up_from(stub, email, ip_address):
    request = pb.CreateUserRequest(
        email=email, password=PASSWORD, first_name="Ada", last_name="L", ip_address=ip_address
    )
    return stub.CreateUser(request, timeout=10).user
