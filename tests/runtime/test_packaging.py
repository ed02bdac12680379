"""Installing authsvc from a checkout: ``pip install .`` works in a fresh virtualenv, and
``make run`` installs only what serving needs.

(``pip install ./clients/python`` alone staying slim is ``clients/python/tests/test_install.py``.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Development tools: ``pip install .`` and ``make run`` bring none of them.
DEV_ONLY = ("pytest", "mypy", "ruff", "hypothesis", "grpc_tools", "importlinter")
CHECK = f"""
import importlib.util, sys
import authsvc.runtime.assembly  # the whole server imports
from authsvc_client.v1 import auth_service_pb2
present = [m for m in {DEV_ONLY!r} if importlib.util.find_spec(m) is not None]
print("dev tools:", present)
"""


def _checkout_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env = {k: v for k, v in env.items() if not k.startswith("AUTHSVC_")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_pip_install_dot_from_a_checkout_installs_a_working_server(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "authsvc")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    installed = _run([str(bin_dir / "pip"), "install", "--quiet", "."], checkout)
    assert installed.returncode == 0, installed.stderr[-3000:]
    checked = _run([str(bin_dir / "python"), "-I", "-c", CHECK], tmp_path)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "dev tools: []" in checked.stdout
    url = f"sqlite:///{tmp_path / 'authsvc.db'}"
    migrated = _run([str(bin_dir / "authsvc"), "migrate", "--database-url", url], tmp_path)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    version = _run([str(bin_dir / "authsvc"), "--version"], tmp_path)
    assert version.stdout == "authsvc 0.1.0\n"


def test_make_run_installs_the_server_without_the_dev_tools(tmp_path: Path) -> None:
    """What ``make run`` would do in a fresh checkout (``make -n``: printed, not run)."""
    planned = _run(["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], ROOT)
    assert planned.returncode == 0, planned.stderr
    installs = [line for line in planned.stdout.splitlines() if " install " in line]
    assert installs, planned.stdout
    assert not any("[dev]" in line for line in installs), installs
    assert planned.stdout.splitlines()[-1].endswith("authsvc serve")
