"""The generated TypeScript client, end to end against a live authsvc.

Builds clients/typescript with tsc, then runs its node:test suite
(clients/typescript/test/e2e.test.ts) against a real server on each database, and checks
that the committed generated code is what ``buf generate`` makes from ``protos/`` today.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import pytest

from tests.node_tools import ROOT, TS_CLIENT, node, npm_tool

GENERATED = TS_CLIENT / "src" / "gen"


@pytest.fixture(scope="module")
def built_client() -> Path:
    """Compiles the client and its tests once per run; returns the compiled test folder."""
    subprocess.run([npm_tool("tsc"), "-p", str(TS_CLIENT)], check=True, cwd=ROOT, timeout=300)
    return TS_CLIENT / "dist" / "test"


def test_node_e2e_suite_passes_against_live_server(built_client: Path, server_address: str):
    env = {**os.environ, "AUTHSVC_TEST_ADDRESS": server_address}
    result = subprocess.run(
        [node(), "--test", "--test-reporter=spec", str(built_client / "e2e.test.js")],
        cwd=TS_CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass 4" in result.stdout, result.stdout


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
