"""Regenerates the committed Python modules from ``protos/`` (``make gen``).

The same function renders into a temporary folder in the stale-stub test, so the
committed modules are always what the current protos and pinned grpcio-tools make.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"


def proto_files() -> list[Path]:
    """Every ``.proto`` under ``protos/authsvc``, sorted."""
    return sorted((PROTO_ROOT / "authsvc").rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Runs protoc for every proto into ``out_dir``; raises RuntimeError on failure."""
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
    generate(ROOT)
    print("generated authsvc/v1 from protos/", file=sys.stderr)


if __name__ == "__main__":
    main()
