"""Prometheus metrics, scraped over HTTP after real calls."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authsvc.runtime.metrics import Metrics
from authsvc.runtime.settings import ConfigError, load_settings
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.conftest import CHEAP_HASH
from tests.helpers import fails, sign_in, sign_up

SERVICE = "authsvc.v1.AuthService"
CHEAP = {"AUTHSVC_PASSWORD_HASH": CHEAP_HASH}


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the endpoint: (name, labels) → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def handled(samples, method: str, code: str) -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}
    return samples.get(("grpc_server_handled_total", frozenset(labels.items())), 0)


def sign_ins(samples, outcome: str) -> float:
    return samples[("authsvc_sign_ins_total", frozenset({("outcome", outcome)}))]


def test_metrics_count_rpcs_sign_ins_refreshes_and_thefts(start_server):
    server, stub = start_server(metrics_address="127.0.0.1:0")
    assert server.metrics is not None
    sign_up(stub)
    signed_in = sign_in(stub)
    fails(stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password="nope"))
    stub.RefreshSession(pb.RefreshSessionRequest(update_token=signed_in.update_token))
    reused = fails(
        stub.RefreshSession, pb.RefreshSessionRequest(update_token=signed_in.update_token)
    )
    assert reused.reason == "REFRESH_TOKEN_REUSED"
    fails(stub.GetUser, pb.GetUserRequest(id="not-a-uuid"))

    samples = scrape(server.metrics.port)
    assert handled(samples, "CreateUser", "OK") == 1
    assert handled(samples, "CreateSession", "OK") == 1
    assert handled(samples, "CreateSession", "UNAUTHENTICATED") == 1
    assert handled(samples, "RefreshSession", "OK") == 1
    assert handled(samples, "RefreshSession", "UNAUTHENTICATED") == 1
    # Mapped by ErrorInterceptor, seen here with the code the caller got.
    assert handled(samples, "GetUser", "INVALID_ARGUMENT") == 1
    latency = frozenset({("grpc_service", SERVICE), ("grpc_method", "CreateSession")})
    assert samples[("grpc_server_handling_seconds_count", latency)] == 2
    assert samples[("grpc_server_handling_seconds_bucket", latency | {("le", "+Inf")})] == 2
    assert sign_ins(samples, "success") == 1
    assert sign_ins(samples, "bad_credentials") == 1
    assert sign_ins(samples, "throttled") == 0
    assert samples[("authsvc_tokens_refreshed_total", frozenset())] == 1
    assert samples[("authsvc_refresh_token_reuse_detected_total", frozenset())] == 1


def test_sign_ins_refused_for_load_count_as_throttled(start_server):
    server, stub = start_server(metrics_address="127.0.0.1:0", hash_concurrency=1)
    sign_up(stub)
    hasher = server.infra.hasher
    hasher._queue_timeout = 0  # don't wait for a slot that is held below
    assert hasher.capacity.take_slot(10)
    try:
        busy = fails(
            stub.CreateSession,
            pb.CreateSessionRequest(email="a@b.cd", password="x"),
            timeout=None,  # no deadline: the queue timeout applies
        )
    finally:
        hasher.capacity.give_slot()
    assert busy.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    samples = scrape(server.metrics.port)
    assert sign_ins(samples, "throttled") == 1
    assert sign_ins(samples, "success") == 0


def test_each_server_has_its_own_registry(start_server):
    first, first_stub = start_server(metrics_address="127.0.0.1:0")
    second, _ = start_server(metrics_address="127.0.0.1:0")
    sign_up(first_stub)
    assert first.metrics.port != second.metrics.port
    assert handled(scrape(first.metrics.port), "CreateUser", "OK") == 1
    assert handled(scrape(second.metrics.port), "CreateUser", "OK") == 0


def test_metrics_are_off_by_default(start_server):
    server, stub = start_server()
    sign_up(stub)
    assert server.metrics is None


def test_metrics_endpoint_stops_with_the_server(start_server):
    server, _ = start_server(metrics_address="127.0.0.1:0")
    port = server.metrics.port
    server.stop(0)
    with pytest.raises(OSError):
        scrape(port)


def test_unknown_status_of_a_sign_in_is_counted_as_error():
    metrics = Metrics()
    metrics.observe(f"/{SERVICE}/CreateSession", grpc.StatusCode.INTERNAL, "INTERNAL", 0.01)
    assert metrics.sign_ins.labels("error")._value.get() == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("AUTHSVC_METRICS_ADDRESS", "9090"), ("AUTHSVC_LOG_FORMAT", "xml")],
)
def test_bad_observability_settings_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value, **CHEAP})


def test_observability_settings_are_read_from_the_environment():
    environ = {"AUTHSVC_METRICS_ADDRESS": "0.0.0.0:9090", "AUTHSVC_LOG_FORMAT": "JSON", **CHEAP}
    settings = load_settings(environ)
    assert (settings.metrics_address, settings.log_format) == ("0.0.0.0:9090", "json")
    defaults = load_settings(CHEAP)
    assert (defaults.metrics_address, defaults.log_format) == ("", "text")
