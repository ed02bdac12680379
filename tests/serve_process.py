"""Runs ``authsvc serve`` as a real subprocess (for crash tests and the soak)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import wait_until

_PORT = re.compile(r"\(port (\d+)\)")


class ServeProcess:
    """``python -m authsvc serve`` on port 0; ``port`` is read back from its log.

    ``log_path`` must be a new file for each process (the port is its first mention).
    """

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environ = {
            **os.environ,
            "AUTHSVC_ADDRESS": "127.0.0.1:0",
            "AUTHSVC_DATABASE_URL": database_url,
            "AUTHSVC_PASSWORD_HASH": "pbkdf2:sha256:1000",
            **env,
        }
        with log_path.open("wb") as log:
            # Its own process group: with pre-forked workers, "authsvc" is several processes.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "authsvc", "serve"],
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.port = self._wait_for_port(timeout=60)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float) -> int:
        def reported_port() -> int | None:
            if self.process.poll() is not None:
                raise RuntimeError(f"authsvc serve exited: {self.log_path.read_text()[-2000:]}")
            found = _PORT.search(self.log_path.read_bytes().decode(errors="replace"))
            return int(found.group(1)) if found else None

        try:
            return wait_until(reported_port, timeout, what="authsvc serve to report its port")
        except AssertionError:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL to every process of the server (supervisor and workers) at once.

        None gets a chance to drain, flush or roll back anything: a crash or an OOM kill.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then waits; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)
