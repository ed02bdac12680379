"""Log set-up: ``text`` or ``json`` lines.

Every field passed through ``extra=`` is written out, in both formats, so callers must
pass ids and codes only: never a password, a token or a hash.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from authsvc.edge.access_log import AccessLog
from authsvc.runtime.periodic import Periodic

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed through ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every extra field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, followed by the extra fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = " ".join(f"{k}={v}" for k, v in extra_fields(record).items() if v is not None)
        if not pairs:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{first} {pairs}{newline}{rest}"


def configure_logging(level: str, log_format: str, stream: IO[str] | None = None) -> None:
    """Sends every log record to ``stream`` (stderr) as ``text`` or ``json`` lines.

    SQLAlchemy logs each statement at INFO on ``sqlalchemy.engine``, so with the root at
    INFO (the default) every query of every call was written out. Its level is therefore
    set apart: WARNING unless ``level`` is DEBUG, and then INFO, never DEBUG, because at
    DEBUG it logs every result row, password and token hashes included (the engine hides
    statement parameters, see ``storage.engine.make_engine``).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    statements = logging.INFO if root.level <= logging.DEBUG else logging.WARNING
    logging.getLogger("sqlalchemy.engine").setLevel(max(root.level, statements))
    # SQLAlchemy names a pool's logger after its class, so our DeadlineQueuePool logs
    # under "authsvc." and its routine INFO lines (dispose, recreate) would reach ours.
    logging.getLogger("authsvc.storage.pool").setLevel(max(root.level, logging.WARNING))


class AccessSummaries(Periodic):
    """Writes the access log's per-method summaries every ``interval`` seconds.

    ``stop()`` writes the last, partial window, so a server that stops loses no counted
    call.
    """

    def __init__(self, access_log: AccessLog, interval: float) -> None:
        super().__init__(self._flush, interval, "access")
        self._access_log = access_log
        self._since = time.monotonic()

    def stop(self) -> None:
        """Stops the timer and writes the summaries of the calls counted since the last."""
        super().stop()
        self._flush()

    def _flush(self) -> None:
        now = time.monotonic()
        self._access_log.flush(now - self._since)
        self._since = now
