"""Pre-forked workers: N server processes sharing one port through ``SO_REUSEPORT``.

One Python process serves gRPC on about one core (the GIL), so ``serve --workers N``
forks N processes, each with its own gRPC server and connection pool, and the kernel
spreads incoming connections among them. gRPC's core does not survive ``fork()``, so
the parent forks before any gRPC object exists and never makes one itself (as gRPC's
``examples/python/multiprocessing/server.py`` does). The parent holds the port,
restarts workers that die, and on SIGTERM/SIGINT forwards the signal so every worker
drains its calls within the grace period. What the workers share (the replica's
password-hash capacity) is made by the caller before ``serve_workers`` forks; when a
worker dies, ``on_exit`` gets its slot so the caller can take back what it held.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from authsvc.runtime.settings import Settings

log = logging.getLogger(__name__)

_CRASH_LOOP_SECONDS = 1.0  # a worker dying sooner than this is restarted after a pause
_TICK_SECONDS = 0.1
_ORPHAN_CHECK_SECONDS = 0.5


RunWorker = Callable[[Settings, int], int]


def serve_workers(
    settings: Settings, run_worker: RunWorker, on_exit: Callable[[int], None] = lambda _: None
) -> int:
    """Holds the port and runs ``settings.worker_count`` workers until SIGTERM/SIGINT.

    ``run_worker(settings, slot)`` runs in each forked child (serving until SIGTERM,
    then draining) and returns its exit status; ``slot`` is 0, 1, ... (a replacement
    gets the slot of the worker it replaces). ``on_exit(slot)`` runs in the parent
    once a worker has died, before its replacement starts. Raises RuntimeError when
    the port is taken.
    """
    host, _, port = settings.address.rpartition(":")
    with reserve_port(host, int(port)) as bound:
        worker_settings = dataclasses.replace(settings, address=f"{host}:{bound}")
        listening = (settings.address, bound)
        return _Supervisor(worker_settings, run_worker, on_exit, listening).run()


def check_port_free(address: str) -> None:
    """Raises RuntimeError ("cannot bind HOST:PORT: Address already in use") when
    ``address`` cannot be bound now; port 0 always can."""
    host, _, port = address.rpartition(":")
    if int(port) != 0:
        with _bound(host, int(port)):
            pass


@contextmanager
def _bound(host: str, port: int) -> Iterator[int]:
    """A plain bind of ``host:port``, refused (RuntimeError) if anyone holds the port."""
    bare = host.strip("[]") or "0.0.0.0"  # noqa: S104 (an empty host means all interfaces)
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bare, port))
        except OSError as exc:
            raise RuntimeError(f"cannot bind {host}:{port}: {exc.strerror}") from None
        yield probe.getsockname()[1]


@contextmanager
def reserve_port(host: str, port: int) -> Iterator[int]:
    """Binds ``host:port`` (0: any free port) with SO_REUSEPORT; yields the port.

    A plain bind comes first, so a port already held by anyone, even by sockets
    that allow reuse, is refused (RuntimeError) rather than silently shared.
    """
    with _bound(host, port) as port:
        pass
    bare = host.strip("[]") or "0.0.0.0"  # noqa: S104 (an empty host means all interfaces)
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((bare, port))
        except OSError as exc:
            raise RuntimeError(f"cannot bind {host}:{port}: {exc.strerror}") from None
        yield port
    finally:
        sock.close()


class _Supervisor:
    """Forks the workers, restarts those that die, drains them all on a signal."""

    def __init__(
        self,
        settings: Settings,
        run_worker: RunWorker,
        on_exit: Callable[[int], None],
        listening: tuple[str, int],
    ) -> None:
        self._settings = settings
        self._run_worker = run_worker
        self._on_exit = on_exit
        self._listening: tuple[str, int] | None = listening  # announced once a worker accepts
        self._children: dict[int, tuple[int, float]] = {}  # pid → (slot, start time)
        self._restarts: list[tuple[float, int]] = []  # (when, slot) of delayed replacements
        self._stopping = False

    def run(self) -> int:
        """Serves until a signal, then drains; returns 0."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self._settings.worker_count):
            self._spawn(slot)
        while not self._stopping:
            self._announce_when_accepting()
            self._reap()
            now = time.monotonic()
            for due in [r for r in self._restarts if r[0] <= now]:
                self._restarts.remove(due)
                self._spawn(due[1])
            time.sleep(_TICK_SECONDS)
        return self._drain()

    def _announce_when_accepting(self) -> None:
        # Say "listening" (what operators and tests wait for) only once a worker accepts.
        if self._listening is None:
            return
        address, port = self._listening
        host = address.rpartition(":")[0].strip("[]")
        target = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        try:
            socket.create_connection((target, port), timeout=_TICK_SECONDS).close()
        except OSError:
            return
        log.info("authsvc listening on %s (port %d)", address, port)
        self._listening = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info(
            "received %s: draining %d workers", signal.Signals(signum).name, len(self._children)
        )
        self._stopping = True

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _drain_when_orphaned(os.getppid())
                status = self._run_worker(worker_settings(self._settings, slot), slot)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(status)
        self._children[pid] = (slot, time.monotonic())
        log.info("worker %d started", pid)

    def _reap(self) -> None:
        while self._children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            child = self._children.pop(pid, None)
            if child is None:
                continue
            slot, started = child
            log.warning("worker %d exited (%s); starting another", pid, _describe(status))
            self._on_exit(slot)
            if time.monotonic() - started < _CRASH_LOOP_SECONDS:
                self._restarts.append((time.monotonic() + _CRASH_LOOP_SECONDS, slot))
            else:
                self._spawn(slot)

    def _drain(self) -> int:
        for pid in self._children:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.grace_period.total_seconds() + 5
        while self._children and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                self._children.pop(pid, None)
            else:
                time.sleep(_TICK_SECONDS)
        for pid in self._children:  # still there after the grace period: stuck
            log.warning("worker %d did not stop in time; killing it", pid)
            _kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        log.info("all workers stopped")
        return 0


def _drain_when_orphaned(parent: int) -> None:
    # A parent killed outright (SIGKILL) cannot forward SIGTERM: without this, its
    # workers would serve on, holding the port, with nobody to restart or stop them.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_ORPHAN_CHECK_SECONDS)
        log.warning("worker %d: the supervisor is gone; draining", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="authsvc-orphan-watch", daemon=True).start()


def worker_settings(settings: Settings, slot: int) -> Settings:
    """The settings of worker ``slot`` (0, 1, ...): each serves its own metrics port.

    Every worker counts only its own calls, so worker ``slot`` listens on the metrics
    port + ``slot`` (scrape each); the gRPC port is shared.
    """
    host, _, port = settings.metrics_address.rpartition(":")
    if not settings.metrics_address or not port.isdigit() or int(port) == 0:
        return settings
    return dataclasses.replace(settings, metrics_address=f"{host}:{int(port) + slot}")


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile; reaped later
        os.kill(pid, signum)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {os.waitstatus_to_exitcode(status)}"
