"""A throwaway PostgreSQL cluster of the test's own, which tests can stop and start.

``initdb`` refuses to run as root, so as root (CI) every server command runs as the
``postgres`` system user through ``runuser`` and the data directory is handed to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_ROOT = Path("/usr/lib/postgresql")


def _bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (initdb and pg_ctl live there)."""
    found = sorted(
        (p for p in _ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError(f"no PostgreSQL server binaries under {_ROOT}")
    return found[-1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """A private cluster in a temporary directory, on its own port, trust auth."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="authsvc-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database of this cluster."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as_user, str(self.bin / tool), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        """Creates the cluster (superuser ``postgres``, trust auth, no fsync: tests only)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        """Starts the server on 127.0.0.1:port only (no Unix socket) and waits for it."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        options += "-c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stops the server; ``immediate`` is a crash (no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stops the server if it runs and deletes the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
