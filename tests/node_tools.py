"""Paths to the Node tooling that ``make`` installs with ``npm ci`` (buf, tsc, node)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "node_modules" / ".bin"
TS_CLIENT = ROOT / "clients" / "typescript"


def npm_tool(name: str) -> str:
    """The path of a tool from node_modules/.bin; fails the test when npm ci has not run."""
    path = NODE_BIN / name
    assert path.exists(), f"{path} is missing: run `make install` (npm ci) first"
    return str(path)


def node() -> str:
    """The ``node`` executable on PATH; fails the test when Node.js is not installed."""
    path = shutil.which("node")
    assert path is not None, "node is not on PATH: install Node.js 20 or newer"
    return path
