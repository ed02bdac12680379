"""The access log: what each RPC's caller got, at a cost the hot path can afford.

Three modes (``AUTHSVC_ACCESS_LOG``):

- ``summary`` (the default): every failed call (a code other than OK) gets its own line;
  successful calls are only counted, and every interval one line per method sums them up
  (calls, codes, p50/p99/max latency). Counting a success is an append to an array.
- ``full``: one line per call, successful or not.
- ``failures``: failed calls only; no summaries.

Health checks (``/grpc.health.v1.Health/``) are probed every few seconds: a line each
would drown the real calls, so they are logged at DEBUG only and never summed up.
Security events are logged by the flows (``authsvc.security``) whatever the mode.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

rpc_log = logging.getLogger("authsvc.rpc")

_QUIET_PREFIX = "/grpc.health.v1.Health/"
_OK = grpc.StatusCode.OK


class AccessLogMode(enum.StrEnum):
    """How much of each call the access log writes (see the module docstring)."""

    SUMMARY = "summary"
    FULL = "full"
    FAILURES = "failures"


@dataclass
class _Window:
    """The calls of one method since the last summary."""

    seconds: array[float] = field(default_factory=lambda: array("d"))
    failures: Counter[str] = field(default_factory=Counter)


class AccessLog:
    """Logs finished calls according to ``mode``; ``flush()`` writes the summaries."""

    def __init__(self, mode: AccessLogMode) -> None:
        self.mode = mode
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._summing = mode is AccessLogMode.SUMMARY

    def quiet(self, method: str) -> bool:
        """True for methods logged at DEBUG only (health checks)."""
        return method.startswith(_QUIET_PREFIX)

    def succeeded(self, method: str, seconds: float, peer: Callable[[], str]) -> None:
        """Records an OK call: counted in ``summary`` mode, a line in ``full`` mode."""
        if self._summing:
            with self._lock:
                window = self._windows.get(method)
                if window is None:
                    window = self._windows[method] = _Window()
                window.seconds.append(seconds)
        elif self.mode is AccessLogMode.FULL:
            self._line(logging.INFO, method, _OK, "", seconds, peer())

    def failed(
        self, method: str, code: grpc.StatusCode, reason: str, seconds: float, peer: str
    ) -> None:
        """Records a failed call: always its own line (and counted in ``summary`` mode)."""
        if self._summing:
            with self._lock:
                window = self._windows.setdefault(method, _Window())
                window.seconds.append(seconds)
                window.failures[code.name] += 1
        self._line(logging.INFO, method, code, reason, seconds, peer)

    def quiet_call(
        self, method: str, code: grpc.StatusCode, seconds: float, peer: Callable[[], str]
    ) -> None:
        """Records a health check: a DEBUG line, only when DEBUG is on."""
        if rpc_log.isEnabledFor(logging.DEBUG):
            self._line(logging.DEBUG, method, code, "", seconds, peer())

    def flush(self, interval: float) -> None:
        """Writes one summary line per method called since the last flush, and resets.

        ``interval`` (seconds) is how long the summed-up window was, for the line.
        """
        with self._lock:
            windows, self._windows = self._windows, {}
        for method, window in sorted(windows.items()):
            _summary(method, window, interval)

    @staticmethod
    def _line(
        level: int, method: str, code: grpc.StatusCode, reason: str, seconds: float, peer: str
    ) -> None:
        duration_ms = round(seconds * 1000, 3)
        fields: dict[str, Any] = {"event": "rpc", "method": method, "code": code.name}
        fields.update(duration_ms=duration_ms, peer=peer, reason=reason or None)
        rpc_log.log(level, "%s %s %.1fms", method, code.name, duration_ms, extra=fields)


def _summary(method: str, window: _Window, interval: float) -> None:
    ordered = sorted(window.seconds)
    calls = len(ordered)
    p50, p99 = _ms(_percentile(ordered, 50)), _ms(_percentile(ordered, 99))
    failures = dict(sorted(window.failures.items()))
    codes = {"OK": calls - sum(failures.values()), **failures}
    fields: dict[str, Any] = {"event": "rpc_summary", "method": method, "calls": calls}
    fields.update(codes=codes, p50_ms=p50, p99_ms=p99, max_ms=_ms(ordered[-1]))
    fields.update(interval_s=round(interval, 1))
    shown = ", ".join(f"{code} {n}" for code, n in codes.items() if n)
    rpc_log.info(
        "%s: %d calls in %.0fs (%s), p50 %.2fms p99 %.2fms",
        method,
        calls,
        interval,
        shown,
        p50,
        p99,
        extra=fields,
    )


def _percentile(ordered: list[float], q: float) -> float:
    index = min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[max(index, 0)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
