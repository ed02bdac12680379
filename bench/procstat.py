"""CPU time of a server process tree plus the PostgreSQL backends serving it, from /proc.

This is the figure that survives a noisy shared machine: the CPU the server side spent,
whatever else competed for the cores meanwhile.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import psycopg2

TICK = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """The parts of /proc/<pid>/stat the benchmark needs (times in clock ticks)."""

    ppid: int
    ticks: int  # utime + stime


def read_stat(pid: int) -> ProcStat | None:
    """The stat of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return ProcStat(int(fields[1]), int(fields[11]) + int(fields[12]))


def process_tree(root: int) -> set[int]:
    """``root`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := read_stat(int(name))) is not None:
            children.setdefault(st.ppid, []).append(int(name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


@dataclass
class CpuMeter:
    """Samples the CPU of a server tree and of a database's backends while a run goes on.

    Backends and workers may come and go during a run, so /proc is sampled every
    ``interval`` seconds and the last value seen of each process is kept (a process
    that exits between samples loses at most one interval). A process first seen after
    ``start()`` counts from zero.
    """

    root_pid: int
    dsn: str  # a maintenance database: this connection's own backend is never counted
    database: str | None  # whose backends to count; None for a server without a database
    interval: float = 0.2
    _first: dict[int, int] = field(default_factory=dict)
    _last: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    server_processes: int = 0
    backends_seen: set[int] = field(default_factory=set)

    def start(self) -> None:
        """Takes the first sample and keeps sampling in a thread until ``stop()``."""
        self._conn = psycopg2.connect(self.dsn)
        self._conn.autocommit = True
        self._first = self._sample()
        self._last = dict(self._first)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        """Takes a last sample and returns the CPU seconds spent since ``start()``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._last.update(self._sample())
        self._conn.close()
        return sum(v - self._first.get(k, 0) for k, v in self._last.items()) * TICK

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._last.update(self._sample())

    def _sample(self) -> dict[int, int]:
        ticks: dict[int, int] = {}
        tree = process_tree(self.root_pid)
        self.server_processes = len(tree)
        for pid in tree:
            if (st := read_stat(pid)) is not None:
                ticks[pid] = st.ticks
        backends = self._backends()
        self.backends_seen.update(backends)
        for pid in backends:
            if (st := read_stat(pid)) is not None:
                ticks[-pid] = st.ticks  # negative keys: backend pids never clash
        return ticks

    def _backends(self) -> list[int]:
        if self.database is None:
            return []
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            )
            return [row[0] for row in cur.fetchall()]
