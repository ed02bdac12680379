"""TLS and mutual TLS: who can even open a connection to authsvc.

Certificates come from a throwaway CA made at test time. Transport security does not
depend on the database, so these run on SQLite only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.runtime import cli
from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.certs import SERVER_NAME, Pki, make_pki, secure_channel
from tests.conftest import CHEAP_HASH, FakeClock
from tests.helpers import sign_up, wait_until

pytestmark = pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serve(make_settings: Callable[..., Settings], clock: FakeClock) -> Iterator[Callable[..., int]]:
    """Starts servers with setting overrides and returns their ports; stops them after."""
    started: list[AuthServer] = []

    def start(**overrides: Any) -> int:
        server, port = create_server(make_settings(**overrides), clock=clock)
        started.append(server)
        return port

    yield start
    for server in started:
        server.stop(0)


def refused(channel: grpc.Channel) -> grpc.StatusCode:
    """The code of a CreateUser call on ``channel`` that must fail."""
    stub = pb_grpc.AuthServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        sign_up(stub)
    return caught.value.code()


def test_plaintext_call_to_a_tls_server_is_refused(serve: Callable[..., int], pki: Pki) -> None:
    port = serve(**pki.tls_settings(mutual=False))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_tls_server_serves_clients_that_trust_its_ca(serve: Callable[..., int], pki: Pki) -> None:
    port = serve(**pki.tls_settings(mutual=False))
    with secure_channel(port, pki.ca.cert) as channel:
        user = sign_up(pb_grpc.AuthServiceStub(channel))
    assert user.email == "ada@example.com"


def test_client_refuses_a_server_certificate_from_another_ca(
    serve: Callable[..., int], pki: Pki
) -> None:
    port = serve(**pki.tls_settings(mutual=False))
    with secure_channel(port, pki.other_ca.cert) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_certificate(
    serve: Callable[..., int], pki: Pki
) -> None:
    port = serve(**pki.tls_settings())
    with secure_channel(port, pki.ca.cert) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(
    serve: Callable[..., int], pki: Pki
) -> None:
    port = serve(**pki.tls_settings())
    intruder = pki.other_ca.client("web-frontend")  # the right name, the wrong issuer
    with secure_channel(port, pki.ca.cert, intruder) as channel:
        assert refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_serves_a_client_certificate_from_the_client_ca(
    serve: Callable[..., int], pki: Pki
) -> None:
    port = serve(**pki.tls_settings())
    with secure_channel(port, pki.ca.cert, pki.ca.client("web-frontend")) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        user = sign_up(stub)
        got = stub.GetUser(pb.GetUserRequest(id=user.id), timeout=10).user
    assert got.email == user.email


def test_health_works_over_mutual_tls(serve: Callable[..., int], pki: Pki) -> None:
    port = serve(**pki.tls_settings())
    with secure_channel(port, pki.ca.cert, pki.ca.client("monitor")) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def health_command(port: int, *flags: str) -> int:
    return cli.main(["health", "--address", f"127.0.0.1:{port}", "--timeout", "10", *flags])


def test_health_command_checks_a_mutual_tls_server(
    serve: Callable[..., int],
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTHSVC_PASSWORD_HASH", CHEAP_HASH)  # checked by hashing once
    port = serve(**pki.tls_settings())
    client = pki.ca.client("healthcheck")
    tls_flags = ["--tls-ca", str(pki.ca.cert), "--tls-server-name", SERVER_NAME]
    client_flags = ["--tls-cert", str(client.cert), "--tls-key", str(client.key)]

    assert health_command(port, *tls_flags, *client_flags) == 0
    assert capsys.readouterr().out.strip() == "SERVING"
    assert health_command(port, *tls_flags) == 1  # no client certificate
    assert "requires a client certificate" in capsys.readouterr().err
    assert health_command(port) == 1  # plaintext
    assert "expects TLS, but this check spoke plaintext" in capsys.readouterr().err


def test_health_command_says_a_server_expects_tls(
    serve: Callable[..., int], pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    port = serve(**pki.tls_settings(mutual=False))
    assert health_command(port) == 1
    assert "expects TLS" in capsys.readouterr().err


def test_health_command_says_a_server_speaks_plaintext(
    serve: Callable[..., int], pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    port = serve()
    assert health_command(port, "--tls-ca", str(pki.ca.cert)) == 1
    assert "speaks plaintext, but TLS was asked for" in capsys.readouterr().err


def test_health_command_says_a_client_certificate_was_refused(
    serve: Callable[..., int], pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    port = serve(**pki.tls_settings())
    intruder = pki.other_ca.client("healthcheck")
    flags = ["--tls-ca", str(pki.ca.cert), "--tls-server-name", SERVER_NAME]
    flags += ["--tls-cert", str(intruder.cert), "--tls-key", str(intruder.key)]
    assert health_command(port, *flags) == 1
    assert "refused the client certificate" in capsys.readouterr().err


def test_health_command_says_the_server_certificate_is_not_trusted(
    serve: Callable[..., int], pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    port = serve(**pki.tls_settings(mutual=False))
    flags = ["--tls-ca", str(pki.other_ca.cert), "--tls-server-name", SERVER_NAME]
    assert health_command(port, *flags) == 1
    assert "not signed by the CA in AUTHSVC_TLS_CA" in capsys.readouterr().err


def test_serve_under_mutual_tls_and_a_policy_passes_its_own_health_check(
    db_url: str, pki: Pki, tmp_path: Path
) -> None:
    """The container case: ``authsvc health`` runs with the server's own environment."""
    server = pki.ca.server(also_client=True)  # presented by the health check as well
    callers = tmp_path / "callers.toml"
    callers.write_text(
        f'loopback = "none"\n[callers]\n"{SERVER_NAME}" = ["grpc.health.v1.Health/Check"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATABASE_URL": db_url,
        "AUTHSVC_PASSWORD_HASH": CHEAP_HASH,
        "AUTHSVC_TLS_CERT": str(server.cert),
        "AUTHSVC_TLS_KEY": str(server.key),
        "AUTHSVC_TLS_CLIENT_CA": str(pki.ca.cert),
        "AUTHSVC_CALLERS": str(callers),
        "AUTHSVC_TLS_CA": str(pki.ca.cert),
        "AUTHSVC_TLS_SERVER_NAME": SERVER_NAME,
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "authsvc", "serve", "--address", "127.0.0.1:0"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        port = wait_for_port(proc, log)
        health = subprocess.run(
            [sys.executable, "-m", "authsvc", "health", "--address", f"127.0.0.1:{port}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (health.returncode, health.stdout.strip()) == (0, "SERVING"), health.stderr
        with secure_channel(port, pki.ca.cert, pki.ca.client("web-frontend")) as channel:
            assert refused(channel) == grpc.StatusCode.PERMISSION_DENIED  # not in the policy
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def wait_for_port(proc: subprocess.Popen[bytes], log: Path) -> int:
    def reported_port() -> int | None:
        if match := re.search(r"port (\d+)", log.read_text()):
            return int(match.group(1))
        assert proc.poll() is None, log.read_text()
        return None

    return wait_until(reported_port, what="authsvc serve to report its port")
