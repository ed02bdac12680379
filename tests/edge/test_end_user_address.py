"""Whose word about the end user's address counts (issue 17): a request's ``ip_address``
is used for throttling and audit only from a caller trusted to assert it.

The live tests call a server bound to every interface over this machine's non-loopback
address (``open_remote`` from ``test_callers``), so the server sees a peer that is not
loopback, and compare with a loopback caller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from authsvc.edge.caller_policy import Admission, CallerPolicy, load_policy
from authsvc.edge.end_user import EndUser
from authsvc.storage.engine import Database
from authsvc.storage.models import AuditRecord
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.edge.test_callers import REMOTE_IP, open_remote  # noqa: F401 (a fixture)
from tests.flows.test_secret_check import retry_delay
from tests.helpers import PASSWORD, failure, sign_in, sign_up
from tests.leak_watch import WATCH

CLAIMED = "198.51.100.7"


def attempt(stub: Any, email: str, password: str, metadata: Any = (), **kw: str) -> str:
    """Signs in; "OK" or the failure's reason."""
    request = pb.CreateSessionRequest(email=email, password=password, **kw)
    try:
        stub.CreateSession(request, timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        return failure(error).reason
    return "OK"


def bogus_sign_ins(stub: Any, n: int, metadata: Any = (), **kw: str) -> list[str]:
    """``n`` wrong passwords, each for another unknown account (no account delay)."""
    return [attempt(stub, f"nobody{i}@example.com", "wrong", metadata, **kw) for i in range(n)]


def failed_rows(database: Database) -> list[tuple[str, str]]:
    """(ip_address, detail) of every SIGN_IN_FAILED row."""
    with database.transaction(writes=False) as db:
        query = select(AuditRecord.ip_address, AuditRecord.detail).where(
            AuditRecord.event == "SIGN_IN_FAILED"
        )
        return [(ip, detail) for ip, detail in db.execute(query)]


def test_an_untrusted_caller_cannot_lock_out_the_address_it_claims(
    open_remote: Callable[..., Any],  # noqa: F811
    database: Database,
) -> None:
    _, remote, local = open_remote()
    sign_up(local)
    stranger = pb_grpc.AuthServiceStub(remote)
    # The per-address budget is 50 failures in 15 minutes: all of them, claiming CLAIMED.
    assert bogus_sign_ins(stranger, 50, ip_address=CLAIMED) == ["INVALID_CREDENTIALS"] * 50
    # A trusted (loopback) caller's end user at that address signs in all the same.
    assert sign_in(local, ip_address=CLAIMED).session_token
    # The stranger's failures counted against its own address, whatever it claims.
    assert attempt(stranger, "ada@example.com", PASSWORD, ip_address="203.0.113.1") == (
        "TOO_MANY_ATTEMPTS"
    )
    assert set(failed_rows(database)) == {(REMOTE_IP, f"claimed ip {CLAIMED}")}


def test_a_caller_flagged_in_the_policy_asserts_the_end_user_address(
    open_remote: Callable[..., Any],  # noqa: F811
    database: Database,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "callers.toml"
    policy.write_text(
        "[callers]\n"
        'other = ["CreateSession"]\n'
        "[callers.web]\n"
        'methods = ["CreateUser", "CreateSession"]\n'
        "asserts_end_user_address = true\n"
    )
    server, remote, _ = open_remote(callers=load_policy(str(policy)), throttle_ip_limit=3)
    keys = {name: server.flows.api_keys.create(name)[1] for name in ("web", "other")}
    for key in keys.values():
        WATCH.learn(key)
    web, other = ((("x-api-key", keys[name]),) for name in ("web", "other"))
    stub = pb_grpc.AuthServiceStub(remote)
    stub.CreateUser(
        pb.CreateUserRequest(
            email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="L"
        ),
        timeout=10,
        metadata=web,
    )
    # "other" may call CreateSession but not assert addresses: its claim counts nowhere.
    assert bogus_sign_ins(stub, 3, other, ip_address=CLAIMED) == ["INVALID_CREDENTIALS"] * 3
    assert attempt(stub, "ada@example.com", PASSWORD, web, ip_address=CLAIMED) == "OK"
    # "web" asserts it: its end user's failures count against that address.
    assert bogus_sign_ins(stub, 3, web, ip_address=CLAIMED) == ["INVALID_CREDENTIALS"] * 3
    assert attempt(stub, "ada@example.com", PASSWORD, web, ip_address=CLAIMED) == (
        "TOO_MANY_ATTEMPTS"
    )
    assert attempt(stub, "ada@example.com", PASSWORD, web, ip_address="203.0.113.2") == "OK"
    rows = failed_rows(database)
    assert rows.count((REMOTE_IP, f"claimed ip {CLAIMED}")) == 3
    assert rows.count((CLAIMED, "")) == 3


def test_sign_ups_of_an_untrusted_caller_count_against_its_own_address(
    open_remote: Callable[..., Any],  # noqa: F811
    database: Database,
) -> None:
    _, remote, local = open_remote(sign_up_limit=2)
    stranger = pb_grpc.AuthServiceStub(remote)
    for n in range(2):
        request = new_user(f"user{n}@example.com", ip_address=f"203.0.113.{n}")
        stranger.CreateUser(request, timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        stranger.CreateUser(new_user("user9@example.com", ip_address="203.0.113.9"), timeout=10)
    assert failure(caught.value).reason == "TOO_MANY_ATTEMPTS"
    assert timedelta(minutes=59) < retry_delay(caught.value) <= timedelta(hours=1)
    # A trusted caller's end users, at their own addresses, still sign up.
    local.CreateUser(new_user("user9@example.com", ip_address="203.0.113.9"), timeout=10)
    with database.transaction(writes=False) as db:
        query = select(AuditRecord.ip_address, AuditRecord.detail).where(
            AuditRecord.event == "SIGN_UP_THROTTLED"
        )
        assert list(db.execute(query)) == [(REMOTE_IP, "claimed ip 203.0.113.9")]


def new_user(email: str, **kw: str) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        email=email, password=PASSWORD, first_name="Ada", last_name="L", **kw
    )


# The policy flag and who is trusted without a policy


def test_an_identity_may_be_a_table_with_methods_and_the_flag() -> None:
    policy = CallerPolicy.from_mapping(
        {
            "callers": {
                "web": {"methods": ["CreateSession"], "asserts_end_user_address": True},
                "billing": {"methods": ["GetUser"]},
                "admin": ["ListUsers"],
            }
        }
    )
    assert policy.allows(["web"], "/authsvc.v1.AuthService/CreateSession")
    assert policy.allows(["billing"], "/authsvc.v1.AuthService/GetUser")
    assert policy.asserts_end_user_address(["someone", "web"])
    assert not policy.asserts_end_user_address(["billing"])
    assert not policy.asserts_end_user_address(["admin"])
    assert not policy.asserts_end_user_address([])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"methods": ["GetUser"], "asserts_end_user_address": "yes"}, "expected true or false"),
        ({"methods": ["GetUser"], "asserts": True}, "unknown key 'asserts'"),
        ({"methods": "GetUser"}, "callers.web: expected a list of methods"),
    ],
)
def test_bad_flags_are_refused_with_the_reason(entry: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        CallerPolicy.from_mapping({"callers": {"web": entry}})
    assert message in str(caught.value)


def test_without_a_policy_loopback_callers_are_trusted() -> None:
    assert Admission(None).trusts_end_user_address((), local=True)
    assert not Admission(None).trusts_end_user_address(("web",), local=False)
    assert Admission(None, privileged_from_anywhere=True).trusts_end_user_address((), local=False)
    # With a policy only the flag counts, even from loopback.
    policy = CallerPolicy.from_mapping({"callers": {"web": ["CreateSession"]}})
    assert not Admission(policy).trusts_end_user_address(("web",), local=True)


def test_an_untrusted_callers_claim_is_only_recorded() -> None:
    untrusted = EndUser(trusted=False, peer_ip="192.0.2.9")
    origin = untrusted.origin(CLAIMED, "curl/8")
    assert (origin.ip_address, origin.claimed_ip, origin.user_agent) == (
        "192.0.2.9",
        CLAIMED,
        "curl/8",
    )
    assert untrusted.origin("192.0.2.9").claimed_ip == ""  # its own address: no claim
    trusted = EndUser(trusted=True, peer_ip="127.0.0.1").origin(CLAIMED)
    assert (trusted.ip_address, trusted.claimed_ip) == (CLAIMED, "")
