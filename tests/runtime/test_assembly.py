"""Health, reflection and the command line, against real processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from authsvc.runtime import cli
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import CHEAP_HASH
from tests.helpers import sign_in, sign_up, wait_until


def test_health_serving_for_server_and_auth_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "authsvc.v1.AuthService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_service(channel):
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {"authsvc.v1.AuthService", "grpc.health.v1.Health"} <= services
    described = db.FindFileContainingSymbol("authsvc.v1.AuthService")
    assert "ValidateToken" in [m.name for m in described.service[0].method]


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update({"AUTHSVC_DATABASE_URL": db_url, "AUTHSVC_PASSWORD_HASH": CHEAP_HASH, **extra})
    return env


def _start(db_url: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "authsvc", "serve", "--address", "127.0.0.1:0"],
        env=_env(db_url),
        stderr=log,
        stdout=log,
        text=True,
    )

    def reported_port() -> int | None:
        if match := re.search(r"port (\d+)", Path(log.name).read_text()):
            return int(match.group(1))
        assert proc.poll() is None, Path(log.name).read_text()
        return None

    try:
        return proc, wait_until(reported_port, what="authsvc serve to report its port")
    except AssertionError:
        proc.kill()
        raise


def test_serve_migrates_serves_and_drains_on_sigterm(db_url, tmp_path):
    proc, port = _start(db_url, tmp_path)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            sign_up(stub)
            token = sign_in(stub).session_token
            assert stub.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=5)
        health = subprocess.run(
            [sys.executable, "-m", "authsvc", "health", "--address", f"127.0.0.1:{port}"],
            env=_env(db_url),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (health.returncode, health.stdout.strip()) == (0, "SERVING")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    log = (tmp_path / "serve.log").read_text()
    assert "draining" in log
    assert "asv_st_" not in log


def test_health_command_says_the_connection_was_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert cli.main(["health", "--address", f"127.0.0.1:{port}", "--timeout", "10"]) == 1
    assert "connection refused: nothing listens at 127.0.0.1:" in capsys.readouterr().err


def test_health_command_says_it_timed_out(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        status = cli.main(["health", "--address", f"127.0.0.1:{port}", "--timeout", "0.5"])
    assert status == 1
    err = capsys.readouterr().err
    assert "no answer from 127.0.0.1:" in err
    assert "within 0.5s (timeout)" in err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"authsvc {metadata.version('authsvc')}"


def test_a_taken_port_exits_2_before_touching_the_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere"  # migrating would fail (1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status = cli.main(
            ["serve", "--address", f"127.0.0.1:{port}", "--database-url", unreachable]
        )
    assert status == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"authsvc: cannot bind 127.0.0.1:{port}: Address already in use"


def test_migrate_command_creates_the_database_and_exits_0(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "authsvc", "migrate"],
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.db").exists()


def test_bad_setting_is_a_one_line_error_and_nonzero_exit(tmp_path):
    for name, value in [
        ("AUTHSVC_SESSION_TTL", "soon"),
        ("AUTHSVC_DATABASE_URL", "mysql://x/y"),
        ("AUTHSVC_PASSWORD_HASH", "md5"),
        ("AUTHSVC_MAX_SESSIONS_PER_USER", "-1"),
    ]:
        env = _env(f"sqlite:///{tmp_path / 'x.db'}", **{name: value})
        result = subprocess.run(
            [sys.executable, "-m", "authsvc", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], (name, result.stderr)
