"""Starts and stops the servers under test as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.runtime.settings import env_names


def supported_settings() -> set[str]:
    """The AUTHSVC_* variables the installed authsvc understands (others it ignores)."""
    return set(env_names().values())


@dataclass(frozen=True)
class RunningServer:
    """A server subprocess and the address its clients use."""

    pid: int
    address: str


def free_port() -> int:
    """A port that was free a moment ago (the server binds it explicitly)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def authsvc_server(database_url: str, settings: Mapping[str, str]) -> Iterator[RunningServer]:
    """``authsvc serve`` on a free port with ``settings`` (AUTHSVC_* name → value)."""
    port = free_port()
    env = _environment(AUTHSVC_DATABASE_URL=database_url, AUTHSVC_ADDRESS=f"127.0.0.1:{port}")
    env.update(settings)
    with _process([sys.executable, "-m", "authsvc", "serve"], env, port) as server:
        yield server


@contextmanager
def empty_server() -> Iterator[RunningServer]:
    """The baseline server (``bench.empty_server``) on a free port, one process."""
    port = free_port()
    command = [sys.executable, "-m", "bench.empty_server", "--port", str(port)]
    with _process(command, _environment(AUTHSVC_WORKERS="1"), port) as server:
        yield server


def _environment(**settings: str) -> dict[str, str]:
    # The caller's own AUTHSVC_* settings would make runs incomparable: drop them. Logging
    # stays at its defaults: what a default deployment pays for its logs is measured too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(settings)
    return env


@contextmanager
def _process(command: list[str], env: dict[str, str], port: int) -> Iterator[RunningServer]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        address = f"127.0.0.1:{port}"
        try:
            _wait_serving(address, proc, log)
            yield RunningServer(proc.pid, address)
        finally:
            _stop(proc)


def _wait_serving(
    address: str, proc: subprocess.Popen[bytes], log: IO[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {_tail(log)}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"server on {address} not serving after {timeout}s: {_tail(log)}")


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read()[-2000:].decode(errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
