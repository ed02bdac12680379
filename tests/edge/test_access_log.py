"""The access log's summaries: counts, codes and percentiles of one window, then a new one."""

from __future__ import annotations

import logging

import grpc
import pytest

from authsvc.edge.access_log import AccessLog, AccessLogMode

METHOD = "/authsvc.v1.AuthService/ValidateToken"


def summaries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "rpc_summary"]


def test_a_summary_counts_codes_and_percentiles_then_starts_over(caplog):
    caplog.set_level(logging.INFO, logger="authsvc.rpc")
    log = AccessLog(AccessLogMode.SUMMARY)
    for ms in range(1, 101):  # 1 ms .. 100 ms
        log.succeeded(METHOD, ms / 1000, lambda: "ipv4:127.0.0.1:1")
    log.failed(METHOD, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", 0.5, "ipv4:127.0.0.1:1")

    log.flush(60.0)
    (summary,) = summaries(caplog)
    assert (summary.calls, summary.codes) == (101, {"OK": 100, "UNAUTHENTICATED": 1})
    # Nearest rank over 101 calls: the 51st and the 100th.
    assert (summary.p50_ms, summary.p99_ms, summary.max_ms) == (51.0, 100.0, 500.0)
    assert summary.interval_s == 60.0

    caplog.clear()
    log.flush(60.0)
    assert summaries(caplog) == []  # nothing was called since


def test_successes_get_no_line_of_their_own_except_in_full_mode(caplog):
    caplog.set_level(logging.INFO, logger="authsvc.rpc")
    for mode, lines in ((AccessLogMode.SUMMARY, 0), (AccessLogMode.FULL, 1)):
        caplog.clear()
        AccessLog(mode).succeeded(METHOD, 0.001, lambda: "ipv4:127.0.0.1:1")
        assert len([r for r in caplog.records if getattr(r, "event", None) == "rpc"]) == lines
