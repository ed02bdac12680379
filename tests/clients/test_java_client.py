"""The Java client (clients/java), compiled with javac and run end to end against authsvc.

clients/java/build.sh generates the Java messages and stub from ``protos/`` (and google.rpc
from third_party/googleapis) on every build, then compiles them with the wrapper and its
end-to-end runner against Debian's grpc-java jars: nothing generated is committed, so
nothing can go stale. The build runs once per module; the runner
(``com.example.authsvc.client.E2eTest``, with the Verifier's ``VerifierE2e``) then runs
against real servers on each database, and once against a mutual-TLS server; the
``WatchEvents`` runner consumes events across a server restart (event_consumers.py). A
machine without Java or grpc-java fails here (``.ci/deps-java.sh`` installs them); it
never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from tests.certs import SERVER_NAME, make_pki
from tests.clients.event_consumers import RestartableServer, check_consumer_survives_restart
from tests.conftest import FakeClock
from tests.node_tools import ROOT

JAVA_CLIENT = ROOT / "clients" / "java"
RUNNER = "com.example.authsvc.client.E2eTest"
PLAINTEXT_TESTS = 8 + 7  # E2eTest's own, then VerifierE2e's
TLS_TESTS = 3


def java() -> str:
    path = shutil.which("java")
    assert path is not None, "java is not on PATH: run .ci/deps-java.sh"
    return path


@pytest.fixture(scope="module")
def classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Builds the client and its runner once per module; returns the run-time classpath."""
    out = tmp_path_factory.mktemp("java-client")
    result = subprocess.run(
        ["bash", str(JAVA_CLIENT / "build.sh"), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (out / "classpath").read_text().strip()


def run_suite(classpath: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_TEST_")}
    return subprocess.run(
        [java(), "-cp", classpath, RUNNER],
        cwd=JAVA_CLIENT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_java_e2e_suite_passes_against_live_server(
    classpath: str, token_servers: dict[str, str]
) -> None:
    result = run_suite(classpath, token_servers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{PLAINTEXT_TESTS} passed, 0 failed" in result.stdout.splitlines(), result.stdout


@pytest.fixture
def mutual_tls_server(
    make_settings: Callable[..., Settings], clock: FakeClock, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """A mutual-TLS authsvc and the files a Java client needs to reach it."""
    pki = make_pki(tmp_path)
    server: AuthServer
    server, port = create_server(make_settings(**pki.tls_settings()), clock=clock)
    client = pki.ca.client("java-client")
    yield {
        "AUTHSVC_TEST_TLS_ADDRESS": f"127.0.0.1:{port}",
        "AUTHSVC_TEST_TLS_CA": str(pki.ca.cert),
        "AUTHSVC_TEST_TLS_CERT": str(client.cert),
        "AUTHSVC_TEST_TLS_KEY": str(client.key),
        "AUTHSVC_TEST_TLS_SERVER_NAME": SERVER_NAME,
    }
    server.stop(0)


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_java_client_speaks_mutual_tls(classpath: str, mutual_tls_server: dict[str, Any]) -> None:
    result = run_suite(classpath, mutual_tls_server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{TLS_TESTS} passed, 0 failed" in result.stdout.splitlines(), result.stdout


def test_event_consumer_sees_every_event_once_across_a_server_restart(
    classpath: str, restartable_server: RestartableServer
) -> None:
    command = [java(), "-cp", classpath, "com.example.authsvc.client.WatchEvents"]
    check_consumer_survives_restart(restartable_server, command, cwd=JAVA_CLIENT)


def test_no_generated_java_is_committed() -> None:
    """Generated Java lives only in the build folder, so it cannot go stale against protos/."""
    src = JAVA_CLIENT / "src"
    sources = sorted(p.relative_to(src) for p in src.rglob("*.java"))  # main/java/com/...
    assert sources, "clients/java/src holds no Java sources"
    wrapper = ("com", "example", "authsvc", "client")
    stray = [str(p) for p in sources if p.parent.parts[2:] != wrapper]
    assert not stray, f"generated Java under clients/java/src: {stray}; build.sh generates it"
