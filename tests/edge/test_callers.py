"""Who may call what: the caller policy (which client certificate may call which RPC)
and protected mode without one (privileged RPCs from loopback only).

Policy tests on a live server run on SQLite only: the policy is enforced before any
database access. Protected-mode tests audit their denials, so they run on both.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import select

from authsvc.edge.caller_interceptor import is_local_peer
from authsvc.edge.caller_policy import (
    ORDINARY_METHODS,
    PENDING_METHODS,
    PRIVILEGED_METHODS,
    Admission,
    CallerPolicy,
    is_privileged,
    load_policy,
)
from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database
from authsvc.storage.models import AuditRecord
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.certs import Issued, Pki, make_pki, secure_channel
from tests.conftest import FakeClock
from tests.helpers import PASSWORD, fails, failure, rpc, sign_in, sign_up
from tests.leak_watch import WATCH

sqlite_only = pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)

AUTH = "/authsvc.v1.AuthService/"
FRONT_END_RPCS = [
    "CreateUser",
    "CreateSession",
    "ValidateToken",
    "RefreshSession",
    "DeleteSession",
    "ChangePassword",
]
ADMIN_RPCS = ["ListUsers", "DeleteUser", "GetUser", "ListSessions", "ListAuditEvents"]
ADMIN_URI = "spiffe://example.org/admin-tool"
ADMIN_EXTRAS = ["grpc.health.v1.Health/*", "grpc.reflection.v1alpha.ServerReflection/*"]
POLICY = f"""
# The web front end is known by its certificate's subject CN.
[callers]
"web-frontend" = {json.dumps([*FRONT_END_RPCS, "grpc.health.v1.Health/Check"])}
# The admin tool by its SAN URI (a SPIFFE ID).
"{ADMIN_URI}" = {json.dumps([*ADMIN_RPCS, *ADMIN_EXTRAS])}
# Monitoring by its SAN DNS name; it may only ask for health.
"monitor.example.org" = ["/grpc.health.v1.Health/Check"]
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "callers.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def port(
    make_settings: Callable[..., Settings], clock: FakeClock, pki: Pki, policy_file: Path
) -> Iterator[int]:
    """A server under mutual TLS enforcing POLICY."""
    settings = make_settings(**pki.tls_settings(), callers=load_policy(str(policy_file)))
    server: AuthServer
    server, bound = create_server(settings, clock=clock)
    yield bound
    server.stop(0)


@pytest.fixture
def connect(pki: Pki, port: int) -> Iterator[Callable[[Issued], grpc.Channel]]:
    """Opens channels to the server presenting a client certificate; closes them after."""
    channels: list[grpc.Channel] = []

    def open_as(client: Issued) -> grpc.Channel:
        channels.append(secure_channel(port, pki.ca.cert, client))
        return channels[-1]

    yield open_as
    for channel in channels:
        channel.close()


@pytest.fixture
def web(pki: Pki, connect: Callable[[Issued], grpc.Channel]) -> grpc.Channel:
    return connect(pki.ca.client("web-frontend"))


@pytest.fixture
def admin(pki: Pki, connect: Callable[[Issued], grpc.Channel]) -> grpc.Channel:
    return connect(pki.ca.client("admin-tool", uri=ADMIN_URI))


@pytest.fixture
def monitor(pki: Pki, connect: Callable[[Issued], grpc.Channel]) -> grpc.Channel:
    return connect(pki.ca.client("monitor", dns="monitor.example.org"))


@pytest.fixture
def stranger(pki: Pki, connect: Callable[[Issued], grpc.Channel]) -> grpc.Channel:
    """A certificate from the right CA whose identities the policy does not name."""
    return connect(pki.ca.client("stranger", dns="stranger.example.org"))


def assert_denied(call: Callable[..., Any], request: Any) -> None:
    failed = fails(call, request)
    assert (failed.code, failed.reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
    assert failed.domain == "authsvc"


# Enforcement on a live server


@sqlite_only
def test_front_end_may_validate_tokens_but_may_not_list_users(web: grpc.Channel) -> None:
    stub = pb_grpc.AuthServiceStub(web)
    sign_up(stub)
    token = sign_in(stub).session_token
    reply = stub.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=10)
    assert reply.user.email == "ada@example.com"
    assert_denied(stub.ListUsers, pb.ListUsersRequest())


@sqlite_only
def test_admin_tool_may_list_users_but_may_not_sign_in(
    web: grpc.Channel, admin: grpc.Channel
) -> None:
    user = sign_up(pb_grpc.AuthServiceStub(web))
    stub = pb_grpc.AuthServiceStub(admin)
    listed = stub.ListUsers(pb.ListUsersRequest(), timeout=10).users
    assert [u.id for u in listed] == [user.id]
    assert_denied(stub.CreateSession, pb.CreateSessionRequest(email=user.email, password="x"))


@sqlite_only
@pytest.mark.parametrize(
    ("caller", "allowed"), [("web", FRONT_END_RPCS), ("admin", ADMIN_RPCS), ("stranger", [])]
)
def test_every_rpc_follows_the_policy(
    caller: str,
    allowed: list[str],
    web: grpc.Channel,
    admin: grpc.Channel,
    stranger: grpc.Channel,
) -> None:
    channels = {"web": web, "admin": admin, "stranger": stranger}
    stub = pb_grpc.AuthServiceStub(channels[caller])
    for method in pb.DESCRIPTOR.services_by_name["AuthService"].methods:
        call = rpc(stub, method.name)
        empty = getattr(pb, method.input_type.name)()
        if method.name not in allowed:
            assert_denied(call, empty)
            continue
        try:
            call(empty, timeout=10)  # allowed: any outcome but a denial
        except grpc.RpcError as exc:
            assert failure(exc).reason != "CALLER_NOT_ALLOWED", method.name


@sqlite_only
def test_health_check_follows_the_policy(
    web: grpc.Channel, monitor: grpc.Channel, stranger: grpc.Channel
) -> None:
    request = health_pb2.HealthCheckRequest()
    for allowed in (web, monitor):
        reply = health_pb2_grpc.HealthStub(allowed).Check(request, timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert_denied(health_pb2_grpc.HealthStub(stranger).Check, request)


@sqlite_only
def test_health_watch_follows_the_policy(web: grpc.Channel, admin: grpc.Channel) -> None:
    request = health_pb2.HealthCheckRequest()
    watch = health_pb2_grpc.HealthStub(admin).Watch(request, timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    denied = health_pb2_grpc.HealthStub(web).Watch(request, timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        next(denied)
    assert failure(caught.value).reason == "CALLER_NOT_ALLOWED"


def list_services(channel: grpc.Channel) -> Any:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    return next(stub.ServerReflectionInfo(iter([request]), timeout=10))


@sqlite_only
def test_reflection_follows_the_policy(web: grpc.Channel, admin: grpc.Channel) -> None:
    names = {s.name for s in list_services(admin).list_services_response.service}
    assert "authsvc.v1.AuthService" in names
    with pytest.raises(grpc.RpcError) as caught:
        list_services(web)
    assert failure(caught.value).code == grpc.StatusCode.PERMISSION_DENIED
    assert failure(caught.value).reason == "CALLER_NOT_ALLOWED"


@sqlite_only
def test_a_denial_is_a_security_event_naming_the_caller_and_method(
    stranger: grpc.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="authsvc.security"):
        assert_denied(pb_grpc.AuthServiceStub(stranger).ListUsers, pb.ListUsersRequest())
    [event] = [r for r in caplog.records if getattr(r, "event", "") == "caller_denied"]
    assert event.__dict__["caller"] == "stranger, stranger.example.org"
    assert event.__dict__["method"] == f"{AUTH}ListUsers"


# Reading policy files


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_toml_and_json_files_give_the_same_policy(tmp_path: Path) -> None:
    rules = {"callers": {"web": ["CreateUser", "grpc.health.v1.Health/Check"]}}
    toml = '[callers]\nweb = ["CreateUser", "grpc.health.v1.Health/Check"]\n'
    from_toml = load_policy(write(tmp_path, "callers.toml", toml))
    from_json = load_policy(write(tmp_path, "callers.json", json.dumps(rules)))
    assert from_toml == from_json
    assert from_toml.allowed == {
        ("web", f"{AUTH}CreateUser"),
        ("web", "/grpc.health.v1.Health/Check"),
    }


def test_short_full_and_slashed_names_mean_the_same_method() -> None:
    for rule in ("GetUser", "authsvc.v1.AuthService/GetUser", f"{AUTH}GetUser"):
        policy = CallerPolicy.from_mapping({"callers": {"admin": [rule]}})
        assert policy.allowed == {("admin", f"{AUTH}GetUser")}


def test_service_wildcard_allows_every_method_of_that_service_only() -> None:
    policy = CallerPolicy.from_mapping({"callers": {"probe": ["grpc.health.v1.Health/*"]}})
    assert policy.allows(["probe"], "/grpc.health.v1.Health/Check")
    assert policy.allows(["probe"], "/grpc.health.v1.Health/Watch")
    assert not policy.allows(["probe"], f"{AUTH}GetUser")


def test_star_allows_everything_served() -> None:
    policy = CallerPolicy.from_mapping({"callers": {"root": ["*"]}})
    for method in pb.DESCRIPTOR.services_by_name["AuthService"].methods:
        assert policy.allows(["root"], f"{AUTH}{method.name}")
    assert policy.allows(["root"], "/grpc.health.v1.Health/Check")
    assert policy.allows(["root"], "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")


def test_the_star_identity_grants_a_method_to_every_caller() -> None:
    policy = CallerPolicy.from_mapping(
        {"callers": {"*": ["grpc.health.v1.Health/Check"], "admin": ["GetUser"]}}
    )
    assert policy.allows([], "/grpc.health.v1.Health/Check")
    assert policy.allows(["anyone"], "/grpc.health.v1.Health/Check")
    assert not policy.allows([], f"{AUTH}GetUser")
    assert not policy.allows(["anyone"], "/grpc.health.v1.Health/Watch")


def test_any_identity_of_the_certificate_may_grant_a_method() -> None:
    policy = CallerPolicy.from_mapping({"callers": {"web": ["CreateUser"], "admin": ["GetUser"]}})
    assert policy.allows(["someone", "admin"], f"{AUTH}GetUser")
    assert not policy.allows(["someone"], f"{AUTH}GetUser")
    assert not policy.allows([], f"{AUTH}GetUser")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"web": ["CreateUser"]}, 'expected exactly one table, "callers"'),
        ({"callers": ["web"]}, '"callers" must map identities to lists of methods'),
        ({"callers": {"web": "CreateUser"}}, "callers.web: expected a list of methods"),
        ({"callers": {"web": [42]}}, "callers.web: 42 is not a method name"),
        ({"callers": {"web": ["CreatUser"]}}, "'CreatUser' is not a method authsvc serves"),
        ({"callers": {"web": ["a.B/*"]}}, "'a.B/*' is not a method authsvc serves"),
        (
            {"callers": {"web": ["grpc.health.v1.Health/Chek"]}},
            "'grpc.health.v1.Health/Chek' is not a method authsvc serves",
        ),
    ],
)
def test_bad_policies_are_refused_with_the_reason(data: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        CallerPolicy.from_mapping(data)
    assert message in str(caught.value)


def test_bad_syntax_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_policy(write(tmp_path, "callers.toml", "[callers\n"))
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_policy(write(tmp_path, "callers.json", "{"))
    with pytest.raises(ValueError, match="cannot read"):
        load_policy(str(tmp_path / "absent.toml"))


@sqlite_only
def test_a_denial_is_audited_and_only_the_admin_tool_lists_audit_events(
    stranger: grpc.Channel, web: grpc.Channel, admin: grpc.Channel
) -> None:
    assert_denied(pb_grpc.AuthServiceStub(stranger).ListUsers, pb.ListUsersRequest())
    assert_denied(pb_grpc.AuthServiceStub(web).ListAuditEvents, pb.ListAuditEventsRequest())
    events = (
        pb_grpc.AuthServiceStub(admin).ListAuditEvents(pb.ListAuditEventsRequest()).audit_events
    )
    assert sorted((e.type, e.detail) for e in events) == [
        (pb.AUDIT_EVENT_TYPE_CALLER_DENIED, f"stranger, stranger.example.org {AUTH}ListUsers"),
        (pb.AUDIT_EVENT_TYPE_CALLER_DENIED, f"web-frontend {AUTH}ListAuditEvents"),
    ]


# Which RPCs are privileged


SERVED = set(pb.DESCRIPTOR.services_by_name["AuthService"].methods_by_name)


def test_every_privileged_or_ordinary_name_is_served_or_pending() -> None:
    named = set(PRIVILEGED_METHODS) | set(ORDINARY_METHODS)
    assert named - SERVED <= PENDING_METHODS, "a name in neither the proto nor PENDING_METHODS"
    assert not set(PRIVILEGED_METHODS) & set(ORDINARY_METHODS)


def test_every_rpc_served_is_classified() -> None:
    # A new RPC must be listed as privileged or ordinary; until then it counts as privileged.
    assert set(PRIVILEGED_METHODS) | set(ORDINARY_METHODS) >= SERVED


def test_an_unclassified_rpc_is_privileged_and_health_is_not() -> None:
    assert is_privileged(f"{AUTH}SomeFutureRpc")
    assert is_privileged(f"{AUTH}ListUsers")
    assert not is_privileged(f"{AUTH}ValidateToken")
    assert not is_privileged("/grpc.health.v1.Health/Check")
    assert not is_privileged("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv4:127.8.9.10:5000", True),
        ("ipv6:[::1]:5000", True),
        ("ipv6:[::ffff:127.0.0.1]:5000", True),
        ("unix:/run/authsvc.sock", True),
        ("unix-abstract:authsvc", True),
        ("ipv4:192.0.2.7:5000", False),
        ("ipv4:10.0.0.1:5000", False),
        ("ipv6:[2001:db8::1]:5000", False),
        ("ipv6:[::ffff:192.0.2.7]:5000", False),
        ("ipv4:localhost:5000", False),
        ("", False),
    ],
)
def test_loopback_peers_are_recognised(peer: str, local: bool) -> None:
    assert is_local_peer(peer) is local


def test_protected_mode_decides_by_method_and_peer() -> None:
    protected = Admission(policy=None)
    assert protected.refusal((), f"{AUTH}ListUsers", local=True) is None
    assert protected.refusal((), f"{AUTH}CreateSession", local=False) is None
    assert protected.refusal((), "/grpc.health.v1.Health/Check", local=False) is None
    message = protected.refusal(("billing",), f"{AUTH}ListUsers", local=False)
    assert message is not None
    assert "AUTHSVC_CALLERS" in message and "AUTHSVC_PRIVILEGED_FROM_ANYWHERE=true" in message
    assert "api-key create" in message
    opened = Admission(policy=None, privileged_from_anywhere=True)
    assert opened.refusal((), f"{AUTH}ListUsers", local=False) is None


def test_a_policy_decides_every_call_even_from_loopback() -> None:
    policy = CallerPolicy.from_mapping({"callers": {"billing": ["GetUser"]}})
    admission = Admission(policy)
    assert admission.refusal(("billing",), f"{AUTH}GetUser", local=False) is None
    assert admission.refusal((), f"{AUTH}GetUser", local=True) is not None
    assert admission.refusal((), f"{AUTH}CreateUser", local=True) is not None


# Protected mode on a live server: no caller policy, a caller from another address


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine outside 127.0.0.0/8, if it has one."""
    candidates: list[str] = []
    with contextlib.suppress(OSError):
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
        candidates += [line.split()[3].split("/")[0] for line in listing.splitlines()]
    return next((a for a in candidates if not ipaddress.ip_address(a).is_loopback), None)


REMOTE_IP = non_loopback_address()


@pytest.fixture
def open_remote(
    start_server: Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]],
) -> Iterator[Callable[..., tuple[AuthServer, grpc.Channel, pb_grpc.AuthServiceStub]]]:
    """Starts a server on every interface; returns it, a channel to it over this machine's
    non-loopback address (so the server sees a non-loopback peer) and a loopback stub."""
    # Never skipped: protected mode is only shown by a peer that is not loopback.
    assert REMOTE_IP is not None, "these tests need a non-loopback IPv4 address on this machine"
    channels: list[grpc.Channel] = []

    def start(**settings: Any) -> tuple[AuthServer, grpc.Channel, pb_grpc.AuthServiceStub]:
        server, local = start_server(address="0.0.0.0:0", **settings)
        channels.append(grpc.insecure_channel(f"{REMOTE_IP}:{server.port}"))
        return server, channels[-1], local

    yield start
    for channel in channels:
        channel.close()


def privileged_requests() -> list[tuple[str, Any]]:
    """An empty request for every privileged RPC the proto has (today's and pending)."""
    service = pb.DESCRIPTOR.services_by_name["AuthService"]
    return [
        (name, getattr(pb, service.methods_by_name[name].input_type.name)())
        for name in PRIVILEGED_METHODS
        if name in service.methods_by_name
    ]


def test_privileged_rpcs_refuse_a_non_loopback_caller_without_a_policy(
    open_remote: Callable[..., Any], database: Database
) -> None:
    _, remote, _ = open_remote()
    stub = pb_grpc.AuthServiceStub(remote)
    for name, request in privileged_requests():
        failed = fails(rpc(stub, name), request)
        assert (failed.code, failed.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "CALLER_NOT_ALLOWED",
        ), name
        assert "AUTHSVC_CALLERS" in failed.message
        assert "AUTHSVC_PRIVILEGED_FROM_ANYWHERE=true" in failed.message
    denied = audit_rows(database, "CALLER_DENIED")
    assert sorted(d.rsplit("/", 1)[-1] for d in denied) == sorted(
        name for name, _ in privileged_requests()
    )
    assert all(d.startswith(f"peer ipv4:{REMOTE_IP}:") for d in denied)


def test_ordinary_rpcs_stay_open_to_a_non_loopback_caller_without_a_policy(
    open_remote: Callable[..., Any], database: Database
) -> None:
    _, remote, _ = open_remote()
    stub = pb_grpc.AuthServiceStub(remote)
    sign_up(stub)
    reply = sign_in(stub)
    validated = stub.ValidateToken(pb.ValidateTokenRequest(session_token=reply.session_token))
    assert validated.user.email == "ada@example.com"
    refreshed = stub.RefreshSession(pb.RefreshSessionRequest(update_token=reply.update_token))
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=refreshed.session_token))
    health = health_pb2_grpc.HealthStub(remote).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert audit_rows(database, "CALLER_DENIED") == []


def test_the_same_server_answers_privileged_rpcs_on_loopback(
    open_remote: Callable[..., Any],
) -> None:
    _, remote, local = open_remote()
    user = sign_up(pb_grpc.AuthServiceStub(remote))
    assert [u.id for u in local.ListUsers(pb.ListUsersRequest(), timeout=10).users] == [user.id]
    assert local.GetUser(pb.GetUserRequest(id=user.id), timeout=10).user.email == user.email


def test_the_opt_out_lets_any_peer_call_privileged_rpcs(open_remote: Callable[..., Any]) -> None:
    _, remote, _ = open_remote(privileged_from_anywhere=True)
    stub = pb_grpc.AuthServiceStub(remote)
    user = sign_up(stub)
    assert [u.id for u in stub.ListUsers(pb.ListUsersRequest(), timeout=10).users] == [user.id]


def test_a_policy_admits_a_non_loopback_caller_by_its_api_key(
    open_remote: Callable[..., Any], tmp_path: Path
) -> None:
    policy = tmp_path / "callers.toml"
    policy.write_text('[callers]\n"billing-service" = ["CreateUser", "ListUsers"]\n')
    server, remote, _ = open_remote(callers=load_policy(str(policy)))
    _, key = server.flows.api_keys.create("billing-service")
    WATCH.learn(key)
    stub = pb_grpc.AuthServiceStub(remote)
    keyed = (("x-api-key", key),)
    user = stub.CreateUser(
        pb.CreateUserRequest(
            email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="L"
        ),
        timeout=10,
        metadata=keyed,
    ).user
    listed = stub.ListUsers(pb.ListUsersRequest(), timeout=10, metadata=keyed).users
    assert [u.id for u in listed] == [user.id]
    assert_denied(stub.ListUsers, pb.ListUsersRequest())  # the same peer without its key


def test_a_denied_peer_is_a_security_event(
    open_remote: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    _, remote, _ = open_remote()
    with caplog.at_level(logging.INFO, logger="authsvc.security"):
        assert_denied(pb_grpc.AuthServiceStub(remote).ListUsers, pb.ListUsersRequest())
    [event] = [r for r in caplog.records if getattr(r, "event", "") == "caller_denied"]
    assert event.__dict__["caller"].startswith(f"peer ipv4:{REMOTE_IP}:")
    assert event.__dict__["method"] == f"{AUTH}ListUsers"


def audit_rows(database: Database, event: str) -> list[str]:
    """The details of the audit rows of ``event``."""
    with database.transaction(writes=False) as db:
        query = select(AuditRecord.detail).where(AuditRecord.event == event)
        return list(db.scalars(query))


def test_the_kubernetes_policy_is_valid_and_lets_probes_check_health() -> None:
    manifest = Path(__file__).parents[2] / "deploy/kubernetes/callers-configmap.yaml"
    lines = manifest.read_text().splitlines()
    start = lines.index("  callers.toml: |") + 1
    block = [line.removeprefix("    ") for line in lines[start:] if line.startswith("    ")]
    policy = CallerPolicy.from_mapping(tomllib.loads("\n".join(block)))
    assert policy.allows([], "/grpc.health.v1.Health/Check")
    assert policy.allows(["admin-tool"], f"{AUTH}ListUsers")
    assert not policy.allows(["billing-service"], f"{AUTH}ListUsers")


def test_only_privileged_rpcs_need_an_identity_without_a_policy() -> None:
    assert Admission(None).decides(f"{AUTH}ListUsers")
    assert not Admission(None).decides(f"{AUTH}ValidateToken")
    assert not Admission(None, privileged_from_anywhere=True).decides(f"{AUTH}ListUsers")
    policy = CallerPolicy.from_mapping({"callers": {"web": ["ValidateToken"]}})
    assert Admission(policy).decides(f"{AUTH}ValidateToken")
