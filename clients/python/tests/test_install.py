"""``pip install ./clients/python`` alone, into a fresh virtualenv, brings no server along."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[1]
# What only the server needs: none of it may reach a calling service.
SERVER_ONLY = ("authsvc", "sqlalchemy", "alembic", "psycopg2", "zxcvbn", "werkzeug")
CHECK = f"""
import importlib.util, sys
from importlib import resources

from authsvc_client import AuthClient, AuthClientError, require_session
from authsvc_client.v1 import auth_service_pb2, auth_service_pb2_grpc

assert auth_service_pb2.User(email="ada@example.com").email == "ada@example.com"
shipped = resources.files("authsvc_client")
for name in ("py.typed", "v1/auth_service_pb2.pyi", "v1/auth_service_pb2_grpc.pyi"):
    assert shipped.joinpath(name).is_file(), name
present = [m for m in {SERVER_ONLY!r} if importlib.util.find_spec(m) is not None]
print("server-only modules:", present)
sys.exit(1 if present else 0)
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_client_installs_alone_without_the_server_or_its_database_stack(tmp_path: Path):
    # A copy, so the build's own files (build/, *.egg-info) never land in the work tree.
    source = tmp_path / "python"
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    installed = _run([python, "-m", "pip", "install", "--quiet", str(source)], tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # -I: neither the working directory nor PYTHON* variables reach sys.path.
    checked = _run([python, "-I", "-c", CHECK], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr[-3000:]
    assert "server-only modules: []" in checked.stdout
    assert sys.prefix != str(env_dir)
