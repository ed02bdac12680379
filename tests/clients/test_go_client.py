"""The Go client (clients/go), compiled and run end to end against a live authsvc.

Runs ``go test`` on clients/go through ``clients/go/offline-go.sh`` (GOPATH mode over
Debian's Go library sources: no Go module proxy) against a real server on each
database (and one whose access tokens live a second, for the Verifier), runs the
``e2e/watchevents`` consumer across a server restart (tests/clients/event_consumers.py),
and checks that the committed generated Go code is what ``buf generate``
makes from ``protos/`` today. Go and the Debian packages come from ``.ci/deps-go.sh``;
when they are missing these tests fail, never skip.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.clients.event_consumers import RestartableServer, check_consumer_survives_restart
from tests.node_tools import ROOT, npm_tool

GO_CLIENT = ROOT / "clients" / "go"
OFFLINE_GO = GO_CLIENT / "offline-go.sh"
GENERATED = GO_CLIENT / "authsvcv1"
TEMPLATE = GO_CLIENT / "buf.gen.yaml"
INSTALL_HINT = "run .ci/deps-go.sh (Debian's golang-go and Go gRPC packages)"

# Every Go test; a test added in clients/go is added here too, so none can vanish silently.
EXPECTED_TESTS = {
    # clients/go/authclient: the wrapper against an in-process Go server.
    "TestAPIKeyAndDefaultDeadlineOnEveryCall",
    "TestNoAPIKeyNoDeadlineWhenUnset",
    "TestErrorDecodedFromStatusDetails",
    "TestErrorStringNamesReasonOnce",
    "TestDialRejectsContradictoryOptions",
    "TestTLSWithCAFileAndServerName",
    "TestMutualTLSPresentsClientCertificate",
    "TestConsumeEventsResumesAfterLastCursorAndStopsOnCursorExpired",
    "TestConsumeEventsReturnsHandlerErrorAndCancellation",
    # clients/go/e2e: against the live server of this test.
    "TestSignUpSignInValidateRefreshReuseSignOut",
    "TestChangePasswordKeepsCallingSession",
    "TestDuplicateSignUpFailsEmailTaken",
    "TestInvalidArgumentNamesFieldViolations",
    "TestTooManyWrongPasswordsGivesRetryAfter",
    "TestVerifierAcceptsValidToken",
    "TestVerifierRefusesForgedTokens",
    "TestVerifierRefetchesKeysAtMostOnceASecondForUnknownKids",
    "TestVerifierRefusesExpiredToken",
    "TestVerifierRefusesSignedOutSessionWithinBound",
    "TestVerifierFallsBackToValidateTokenWhenStale",
    "TestVerifierCutOffFromFeedFailsClosed",
}


def _require(tool: str) -> str:
    path = shutil.which(tool)
    assert path is not None, f"{tool} is not on PATH: {INSTALL_HINT}"
    return path


def _offline_go(*args: str, env: dict[str, str] | None = None, timeout: int = 600):
    _require("go")
    return subprocess.run(
        [str(OFFLINE_GO), *args],
        cwd=GO_CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_go_suite_passes_against_live_server(token_servers: dict[str, str]):
    env = {**os.environ, **token_servers}
    result = _offline_go("test", "-count=1", "-v", "./...", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = set(re.findall(r"^\s*--- PASS: (\w+)", result.stdout, re.MULTILINE))
    assert passed == EXPECTED_TESTS, output
    assert "--- FAIL" not in result.stdout, output


def test_event_consumer_sees_every_event_once_across_a_server_restart(
    restartable_server: RestartableServer, tmp_path: Path
):
    program = tmp_path / "watchevents"
    built = _offline_go("build", "-o", str(program), "./e2e/watchevents")
    assert built.returncode == 0, built.stdout + built.stderr
    check_consumer_survives_restart(restartable_server, [str(program)])


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def _generate(template: Path, out: Path, cwd: Path = ROOT) -> None:
    _require("protoc-gen-go")
    _require("protoc-gen-go-grpc")
    subprocess.run(
        [npm_tool("buf"), "generate", "--template", str(template), "-o", str(out)],
        check=True,
        cwd=cwd,
        timeout=120,
    )


def test_committed_go_matches_protos(tmp_path: Path):
    _generate(TEMPLATE, tmp_path)
    fresh = tmp_path / GENERATED.relative_to(ROOT)
    assert _files(fresh) == _files(GENERATED), "run `make gen` and commit clients/go/authsvcv1"
    stale = [str(p) for p in _files(fresh) if not filecmp.cmp(fresh / p, GENERATED / p, False)]
    assert not stale, f"stale generated Go {stale}: run `make gen` and commit"


ADDED_RPC = """
service AuthService {
  // An RPC that does not exist yet, to prove the wrapper survives new RPCs.
  rpc PingForTest(PingForTestRequest) returns (PingForTestResponse);
"""
ADDED_MESSAGES = """
// Request of AuthService.PingForTest.
message PingForTestRequest {}

// Response of AuthService.PingForTest.
message PingForTestResponse {}
"""


def test_wrapper_builds_when_an_rpc_is_added(tmp_path: Path):
    """The contract will grow: the wrapper must compile against stubs with a new RPC."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "protos", copy / "protos", ignore=shutil.ignore_patterns("released"))
    shutil.copytree(GO_CLIENT, copy / "clients" / "go")
    proto = copy / "protos" / "authsvc" / "v1" / "auth_service.proto"
    text = proto.read_text()
    assert "\nservice AuthService {\n" in text
    proto.write_text(text.replace("\nservice AuthService {\n", ADDED_RPC, 1) + ADDED_MESSAGES)
    _generate(Path("clients/go/buf.gen.yaml"), copy, cwd=copy)
    grpc_stub = (copy / "clients/go/authsvcv1/auth_service_grpc.pb.go").read_text()
    assert "PingForTest(ctx context.Context" in grpc_stub
    probe = copy / "clients" / "go" / "authclient" / "probe_test.go"
    probe.write_text(
        "package authclient_test\n\n"
        'import "example.com/authsvc/clients/go/authclient"\n\n'
        "// The new RPC is a method of Client with no change to the wrapper.\n"
        "var _ = (*authclient.Client).PingForTest\n"
    )
    result = subprocess.run(
        [str(copy / "clients/go/offline-go.sh"), "vet", "./..."],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
