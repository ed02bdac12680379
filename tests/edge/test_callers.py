"""The caller policy: which client certificate may call which RPC.

Server tests run on SQLite only: the policy is enforced before any database access.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authsvc.edge.caller_policy import CallerPolicy, load_policy
from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from authsvc.v1 import auth_service_pb2 as pb
from authsvc.v1 import auth_service_pb2_grpc as pb_grpc
from tests.certs import Issued, Pki, make_pki, secure_channel
from tests.conftest import FakeClock
from tests.helpers import fails, failure, sign_in, sign_up

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
        call = getattr(stub, method.name)
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
