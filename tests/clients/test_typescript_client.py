"""The TypeScript client (``@authsvc/client``), end to end against live authsvc servers.

Builds clients/typescript with tsc, then runs its node:test suites against real servers:
``e2e.test.ts`` on each database (plaintext), ``tls.test.ts`` against a TLS and a mutual-TLS
server made from a throwaway CA, ``api-key.test.ts`` (a local Node gRPC server that
records the ``x-api-key`` header), ``events.test.ts`` (EventConsumer against a scripted
local server), ``verifier.test.ts`` (the access-token Verifier against live servers), and
``watch-events.ts`` across a restart of the server (tests/clients/event_consumers.py). It
also installs the package as another service would (``npm pack``, then ``npm install`` of
the tarball into a fresh project that imports, requires and type-checks it and calls the
live server), and checks that the committed generated code is what ``buf generate`` makes
from ``protos/`` today.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authsvc.runtime.assembly import AuthServer
from tests.certs import SERVER_NAME, make_pki
from tests.clients.event_consumers import RestartableServer, check_consumer_survives_restart
from tests.node_tools import ROOT, TS_CLIENT, node, npm, npm_tool, tsc

GENERATED = TS_CLIENT / "src" / "gen"


@pytest.fixture(scope="module")
def built_client() -> Path:
    """Compiles the client and its tests once per run; returns the compiled test folder."""
    subprocess.run([tsc(), "-p", str(TS_CLIENT)], check=True, cwd=ROOT, timeout=300)
    return TS_CLIENT / "dist" / "test"


def run_node_tests(test_file: Path, env: dict[str, str], passed: int) -> None:
    """Runs one compiled node:test file; all ``passed`` tests must pass."""
    result = subprocess.run(
        [node(), "--test", "--test-reporter=spec", str(test_file)],
        cwd=TS_CLIENT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pass {passed}" in result.stdout, result.stdout


def test_node_e2e_suite_passes_against_live_server(built_client: Path, server_address: str):
    run_node_tests(built_client / "e2e.test.js", {"AUTHSVC_TEST_ADDRESS": server_address}, 5)


def test_api_key_is_sent_as_x_api_key_metadata(built_client: Path):
    run_node_tests(built_client / "api-key.test.js", {}, 4)


def test_event_consumer_resume_rules(built_client: Path):
    run_node_tests(built_client / "events.test.js", {}, 3)


def test_event_consumer_sees_every_event_once_across_a_server_restart(
    built_client: Path, restartable_server: RestartableServer
):
    command = [node(), str(built_client / "watch-events.js")]
    check_consumer_survives_restart(restartable_server, command, cwd=TS_CLIENT)


def test_verifier_against_live_servers(built_client: Path, token_servers: dict[str, str]):
    run_node_tests(built_client / "verifier.test.js", token_servers, 7)


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_tls_and_mutual_tls_connections(
    built_client: Path, start_server: Callable[..., tuple[AuthServer, Any]], tmp_path: Path
):
    pki = make_pki(tmp_path)
    tls_server, _ = start_server(**pki.tls_settings(mutual=False))
    mtls_server, _ = start_server(**pki.tls_settings())
    client = pki.ca.client("ts-client")
    env = {
        "AUTHSVC_TEST_TLS_ADDRESS": f"127.0.0.1:{tls_server.port}",
        "AUTHSVC_TEST_MTLS_ADDRESS": f"127.0.0.1:{mtls_server.port}",
        "AUTHSVC_TEST_CA": str(pki.ca.cert),
        "AUTHSVC_TEST_CLIENT_CERT": str(client.cert),
        "AUTHSVC_TEST_CLIENT_KEY": str(client.key),
        "AUTHSVC_TEST_SERVER_NAME": SERVER_NAME,
    }
    run_node_tests(built_client / "tls.test.js", env, 8)


CONSUMER_ESM = """\
import { Code, authFailure, createAuthClient } from "@authsvc/client";

const auth = createAuthClient({ address: process.argv[2] });
const request = {
  email: `esm.${process.pid}@example.com`,
  password: "correct horse battery staple",
  firstName: "Ada",
  lastName: "Lovelace",
};
const { user } = await auth.createUser(request);
let reason;
try {
  await auth.createUser(request);
} catch (error) {
  const failure = authFailure(error);
  reason = failure?.code === Code.AlreadyExists ? failure.reason : String(error);
}
console.log(JSON.stringify({ email: user.email, reason }));
"""

CONSUMER_CJS = """\
const { createAuthClient } = require("@authsvc/client");

const auth = createAuthClient({ address: process.argv[2] });
auth
  .createUser({
    email: `cjs.${process.pid}@example.com`,
    password: "correct horse battery staple",
    firstName: "Ada",
    lastName: "Lovelace",
  })
  .then(({ user }) => console.log(JSON.stringify({ email: user.email })));
"""

CONSUMER_TS = """\
import { authFailure, createAuthClient } from "@authsvc/client";
import type { AuthClient, AuthFailure, AuthClientOptions } from "@authsvc/client";

const options: AuthClientOptions = {
  address: "127.0.0.1:50051",
  tls: { ca: "PEM", serverName: "authsvc.internal", cert: "PEM", key: "PEM" },
  apiKey: process.env["AUTHSVC_API_KEY"], // string | undefined
  timeoutMs: 1000,
};
const auth: AuthClient = createAuthClient(options);
export async function signIn(email: string, password: string): Promise<string | number> {
  try {
    return (await auth.createSession({ email, password })).sessionToken;
  } catch (error) {
    const failure: AuthFailure | undefined = authFailure(error);
    return failure?.retryAfterMs ?? failure?.reason ?? "unknown";
  }
}
// The types are real, not `any` (which skipLibCheck could hide): a wrong option is an error.
// @ts-expect-error -- `adress` is not an option
createAuthClient({ adress: "127.0.0.1:50051" });
"""


@pytest.mark.slow
@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_consumer_installs_the_packed_client_and_calls_the_server(
    server_address: str, tmp_path: Path
):
    """What another service does: install the tarball, import (or require) it, call."""
    packed = subprocess.run(
        [npm(), "pack", "--json", "--pack-destination", str(tmp_path)],
        cwd=TS_CLIENT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    manifest = json.loads(packed.stdout[packed.stdout.index("[") :])[0]
    shipped = {entry["path"] for entry in manifest["files"]}
    assert {"package.json", "README.md", "dist/src/index.js", "dist/src/index.d.ts"} <= shipped
    assert not [p for p in shipped if p.startswith(("dist/test", "test/"))], shipped
    tarball = tmp_path / manifest["filename"]

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "package.json").write_text('{"name": "consumer", "private": true}\n')
    subprocess.run(
        [npm(), "install", "--prefer-offline", "--no-audit", "--no-fund", str(tarball)],
        cwd=consumer,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    installed = json.loads((consumer / "package.json").read_text())
    assert installed["dependencies"]["@authsvc/client"].endswith(tarball.name)
    # The peer dependencies came along (npm 7+ installs them).
    for peer in ("@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node"):
        assert (consumer / "node_modules" / peer / "package.json").exists(), peer

    (consumer / "esm.mjs").write_text(CONSUMER_ESM)
    (consumer / "cjs.cjs").write_text(CONSUMER_CJS)
    esm = run_consumer(consumer, "esm.mjs", server_address)
    assert esm["email"].startswith("esm."), esm
    assert esm["reason"] == "EMAIL_TAKEN", esm
    assert run_consumer(consumer, "cjs.cjs", server_address)["email"].startswith("cjs.")

    (consumer / "index.ts").write_text(CONSUMER_TS)
    tsconfig = {
        "compilerOptions": {
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            "target": "ES2022",
            "strict": True,
            "exactOptionalPropertyTypes": True,
            "noEmit": True,
            "skipLibCheck": True,
            "typeRoots": [str(ROOT / "node_modules" / "@types")],
            "types": ["node"],
        },
        "files": ["index.ts"],
    }
    (consumer / "tsconfig.json").write_text(json.dumps(tsconfig))
    checked = subprocess.run(
        [tsc(), "-p", str(consumer)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def run_consumer(consumer: Path, script: str, address: str) -> Any:
    result = subprocess.run(
        [node(), script, address], cwd=consumer, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def test_committed_typescript_matches_protos(tmp_path: Path):
    subprocess.run(
        [npm_tool("buf"), "generate", "--template", "buf.gen.ts.yaml", "-o", str(tmp_path)],
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    fresh = tmp_path / GENERATED.relative_to(ROOT)
    assert _files(fresh) == _files(GENERATED), "run `make gen` and commit clients/typescript"
    stale = [str(p) for p in _files(fresh) if not filecmp.cmp(fresh / p, GENERATED / p, False)]
    assert not stale, f"stale generated TypeScript {stale}: run `make gen` and commit"
