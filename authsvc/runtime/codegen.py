"""Regenerates the committed Python stubs from ``protos/`` (``make gen``).

The stubs ship in the client distribution (``clients/python``, import name
``authsvc_client``) and the server imports them from there, so the server depends on
the client and never the reverse. protoc names modules after the proto's path
(``authsvc.v1``); the generated imports are rewritten to ``authsvc_client.v1``.

The same function renders into a temporary folder in the stale-stub test, so the
committed modules are always what the current protos and pinned grpcio-tools make.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"
#: The client distribution's folder: the stubs land in ``<it>/authsvc_client/v1/``.
CLIENT_ROOT = ROOT / "clients" / "python"
PACKAGE = "authsvc_client"

# Only module references move: `from authsvc.v1 import x_pb2` and the quoted module
# names ('authsvc.v1.x_pb2', 'authsvc/v1/x_pb2_grpc.py'). The proto package and file
# name inside the descriptors and the method paths (`/authsvc.v1.AuthService/...`) are
# the wire contract and stay as they are.
_REWRITES = (
    (re.compile(r"\bfrom authsvc\.v1 import\b"), f"from {PACKAGE}.v1 import"),
    (re.compile(r"\bauthsvc([./])v1\1(\w+_pb2)"), rf"{PACKAGE}\1v1\1\2"),
)


def proto_files() -> list[Path]:
    """Every ``.proto`` under ``protos/authsvc``, sorted."""
    return sorted((PROTO_ROOT / "authsvc").rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Writes the stubs of every proto to ``out_dir/authsvc_client/v1/``.

    Raises RuntimeError when protoc or its mypy plugin fails.
    """
    with tempfile.TemporaryDirectory() as raw:
        _protoc(Path(raw))
        for generated in sorted(Path(raw).rglob("*_pb2*")):
            relative = generated.relative_to(raw)
            target = out_dir / PACKAGE / relative.relative_to(relative.parts[0])
            target.parent.mkdir(parents=True, exist_ok=True)
            source = generated.read_text(encoding="utf-8")
            target.write_text(rewrite_imports(source), encoding="utf-8")


def rewrite_imports(source: str) -> str:
    """``source`` with its ``authsvc.v1`` module references moved to ``authsvc_client.v1``."""
    for pattern, replacement in _REWRITES:
        source = pattern.sub(replacement, source)
    return source


def _protoc(out_dir: Path) -> None:
    well_known = resources.files("grpc_tools") / "_proto"
    plugin = shutil.which("protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if plugin is None:
        raise RuntimeError("protoc-gen-mypy_grpc not found: install the dev extra")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")


def main() -> None:
    """Entry point of ``python -m authsvc.runtime.codegen``."""
    generate(CLIENT_ROOT)
    print(f"generated {PACKAGE}/v1 in clients/python from protos/", file=sys.stderr)


if __name__ == "__main__":
    main()
