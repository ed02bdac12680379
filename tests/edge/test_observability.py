"""Structured logs: the access log (summaries, failures, full), security events, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import select

from authsvc.edge.access_log import AccessLogMode
from authsvc.runtime.assembly import create_server
from authsvc.runtime.logs import JsonFormatter, TextFormatter, configure_logging
from authsvc.storage.models import User
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until

NEW_PASSWORD = "an entirely new passphrase"


class JsonLines:
    """The JSON lines authsvc's loggers write while the test runs."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def events(self, name: str) -> list[dict]:
        return [e for e in self.entries() if e.get("event") == name]


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("authsvc")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield JsonLines(stream)
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_full_access_log_writes_one_json_line_per_rpc(start_server, json_logs: JsonLines):
    _server, stub = start_server(access_log=AccessLogMode.FULL)
    sign_up(stub)
    fails(stub.GetUser, pb.GetUserRequest(id="not-a-uuid"))
    rpcs = json_logs.events("rpc")
    assert [(e["method"], e["code"]) for e in rpcs] == [
        ("/authsvc.v1.AuthService/CreateUser", "OK"),
        ("/authsvc.v1.AuthService/GetUser", "INVALID_ARGUMENT"),
    ]
    for entry in rpcs:
        assert entry["logger"] == "authsvc.rpc"
        assert entry["level"] == "INFO"
        assert isinstance(entry["duration_ms"], int | float)
        assert entry["duration_ms"] >= 0
        assert entry["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:"))
    assert rpcs[0]["reason"] is None
    assert rpcs[1]["reason"] == "INVALID_ARGUMENT"


def test_by_default_failures_get_a_line_and_successes_a_summary(start_server, json_logs: JsonLines):
    server, stub = start_server()
    sign_up(stub)
    signed_in = sign_in(stub)
    for _ in range(3):
        stub.ValidateToken(pb.ValidateTokenRequest(session_token=signed_in.session_token))
    fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token="asv_st_" + "x" * 43))
    failed = [(e["method"], e["code"], e["reason"]) for e in json_logs.events("rpc")]
    assert failed == [("/authsvc.v1.AuthService/ValidateToken", "UNAUTHENTICATED", "TOKEN_INVALID")]
    assert json_logs.events("rpc_summary") == []  # the interval (1m) has not passed

    server.stop(0)  # writes the last window

    summaries = {e["method"]: e for e in json_logs.events("rpc_summary")}
    validate = summaries["/authsvc.v1.AuthService/ValidateToken"]
    assert validate["calls"] == 4
    assert validate["codes"] == {"OK": 3, "UNAUTHENTICATED": 1}
    assert 0 <= validate["p50_ms"] <= validate["p99_ms"] <= validate["max_ms"]
    assert summaries["/authsvc.v1.AuthService/CreateSession"]["codes"] == {"OK": 1}
    assert summaries["/authsvc.v1.AuthService/CreateUser"]["calls"] == 1


def test_summaries_come_every_interval(start_server, json_logs: JsonLines):
    _server, stub = start_server(access_log_interval=timedelta(milliseconds=50))
    sign_up(stub)
    wait_until(lambda: json_logs.events("rpc_summary"))
    (summary,) = json_logs.events("rpc_summary")
    assert (summary["method"], summary["calls"]) == ("/authsvc.v1.AuthService/CreateUser", 1)


def test_failures_mode_writes_failed_calls_only(start_server, json_logs: JsonLines):
    server, stub = start_server(access_log=AccessLogMode.FAILURES)
    sign_up(stub)
    fails(stub.GetUser, pb.GetUserRequest(id="not-a-uuid"))
    server.stop(0)
    assert [e["code"] for e in json_logs.events("rpc")] == ["INVALID_ARGUMENT"]
    assert json_logs.events("rpc_summary") == []


def test_security_events_name_the_user_and_never_a_secret(stub, json_logs, database):
    user = sign_up(stub)
    fails(stub.CreateSession, pb.CreateSessionRequest(email=user.email, password="wrong!pass"))
    fails(stub.CreateSession, pb.CreateSessionRequest(email="nobody@example.com", password="x"))
    signed_in = sign_in(stub)
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=signed_in.session_token,
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
        )
    )
    refreshed = stub.RefreshSession(pb.RefreshSessionRequest(update_token=signed_in.update_token))
    fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=signed_in.update_token))
    with database.transaction(writes=False) as db:
        password_hash = db.scalar(select(User.password_hash))
    stub.DeleteUser(pb.DeleteUserRequest(id=user.id))

    # One vocabulary: each line's event is the audit event type in lower case.
    expected = [
        ("user_created", user.id),
        ("sign_in_failed", user.id),
        ("sign_in_failed", None),  # unknown email: no user to name
        ("sign_in_succeeded", user.id),
        ("password_changed", user.id),
        ("session_refreshed", user.id),
        ("refresh_token_reused", user.id),
        ("user_deleted", user.id),
    ]
    security = [e for e in json_logs.entries() if e["logger"] == "authsvc.security"]
    assert [(e["event"], e["user_id"]) for e in security] == expected
    assert all(e["message"] == e["event"] for e in security)

    secrets = [
        PASSWORD,
        NEW_PASSWORD,
        "wrong!pass",
        password_hash,
        signed_in.session_token,
        signed_in.update_token,
        refreshed.session_token,
        refreshed.update_token,
    ]
    for secret in secrets:
        assert secret not in json_logs.text


def test_text_format_appends_the_fields():
    record = logging.makeLogRecord(
        {"name": "authsvc.security", "levelname": "INFO", "msg": "user_deleted"}
    )
    record.event, record.user_id, record.reason = "user_deleted", "u-1", None
    line = TextFormatter().format(record)
    assert line.endswith("INFO authsvc.security user_deleted event=user_deleted user_id=u-1")


def test_configure_logging_selects_the_format():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("INFO", "json", stream)
        logging.getLogger("authsvc.test").info("hello %s", "world", extra={"user_id": "u-1"})
        configure_logging("WARNING", "text", stream)
        logging.getLogger("authsvc.test").info("dropped")
    finally:
        root.handlers[:], root.level = handlers, level
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["user_id"] == "u-1"
    assert entry["level"] == "INFO"


def test_health_checks_are_logged_at_debug_only(make_settings, clock, json_logs: JsonLines):
    server, port = create_server(make_settings(access_log=AccessLogMode.FULL), clock=clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            pb_grpc.AuthServiceStub(channel).ListUsers(pb.ListUsersRequest(), timeout=10)
            health = health_pb2_grpc.HealthStub(channel)
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            logging.getLogger("authsvc").setLevel(logging.DEBUG)
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    finally:
        server.stop(0)
    logged = [(e["method"], e["level"]) for e in json_logs.events("rpc")]
    assert logged == [
        ("/authsvc.v1.AuthService/ListUsers", "INFO"),
        ("/grpc.health.v1.Health/Check", "DEBUG"),
    ]
    assert json_logs.events("rpc_summary") == []  # health checks are never summed up


def test_sql_statements_are_logged_at_debug_only():
    root, sql = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    saved = (root.level, list(root.handlers), sql.level)
    try:
        configure_logging("INFO", "text", io.StringIO())
        assert root.isEnabledFor(logging.INFO)
        assert not sql.isEnabledFor(logging.INFO)  # INFO is where SQLAlchemy logs statements
        configure_logging("DEBUG", "text", io.StringIO())
        assert sql.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        sql.setLevel(saved[2])
