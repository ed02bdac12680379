"""Paths to the Node tooling that ``make`` installs with ``npm ci`` (buf, tsc, node, npm)."""

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


def tsc() -> str:
    """The TypeScript compiler the client pins (clients/typescript's devDependency).

    npm nests it under clients/typescript when another package pulls a different version
    into the top-level node_modules; then the top-level one is not the pinned one.
    """
    pinned = TS_CLIENT / "node_modules" / ".bin" / "tsc"
    return str(pinned) if pinned.exists() else npm_tool("tsc")


def npm() -> str:
    """The ``npm`` executable on PATH; fails the test when it is not installed."""
    path = shutil.which("npm")
    assert path is not None, "npm is not on PATH: install Node.js 20 or newer (with npm)"
    return path
