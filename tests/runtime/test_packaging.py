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
    # Not PYTHON* (a foreign interpreter's paths), nor make's own variables: under
    # `make test` they would make `make -n` a sub-make ("make[1]: Entering directory").
    dropped = ("PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
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
    planned = _run(["make", "-n", "--no-print-directory", "run", f"VENV={tmp_path / 'venv'}"], ROOT)
    assert planned.returncode == 0, planned.stderr
    installs = [line for line in planned.stdout.splitlines() if " install " in line]
    assert installs, planned.stdout
    assert not any("[dev]" in line for line in installs), installs
    assert planned.stdout.splitlines()[-1].endswith("authsvc serve")


# --- `make test` on a fresh machine: it installs what the Go and Java tests need ---

DEPS_SCRIPTS = (".ci/deps-go.sh", ".ci/deps-java.sh")


def test_make_test_installs_the_client_test_dependencies_before_the_suite(tmp_path: Path) -> None:
    planned = _run(
        ["make", "-n", "--no-print-directory", "test", f"VENV={tmp_path / 'venv'}"], ROOT
    )
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    pytest_line = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    for script in DEPS_SCRIPTS:
        assert any(script in line for line in lines[:pytest_line]), planned.stdout


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.parametrize("script", DEPS_SCRIPTS)
def test_on_a_fresh_machine_the_deps_scripts_install_the_missing_packages(
    script: str, tmp_path: Path
) -> None:
    """dpkg knows none of the packages (a fresh machine): apt-get installs them all."""
    calls = tmp_path / "apt-get.calls"
    _stub(tmp_path, "dpkg-query", "exit 1")
    _stub(tmp_path, "apt-get", f'echo "$*" >> {calls}')
    _stub(tmp_path, "sudo", '"$@"')
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    update, install = calls.read_text().splitlines()
    assert " update" in update
    expected = {
        "go": ("golang-go", "protobuf-compiler"),
        "java": ("libgrpc-java", "protobuf-compiler"),
    }
    for package in expected["go" if "go" in script else "java"]:
        assert f" {package}" in install, install


@pytest.mark.parametrize("script", DEPS_SCRIPTS)
def test_with_everything_installed_the_deps_scripts_leave_apt_alone(
    script: str, tmp_path: Path
) -> None:
    """The second and later runs only ask dpkg (make test runs them every time)."""
    subprocess.run(["bash", script], cwd=ROOT, check=True, capture_output=True, timeout=1800)
    _stub(tmp_path, "apt-get", "echo apt-get was called >&2; exit 1")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    again = subprocess.run(
        ["bash", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert (again.returncode, again.stderr) == (0, ""), again.stderr
