"""Log set-up: ``text`` or ``json`` lines.

Every field passed through ``extra=`` is written out, in both formats, so callers must
pass ids and codes only: never a password, a token or a hash.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

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

    SQLAlchemy's engine logger never goes below INFO: at DEBUG it logs every result
    row, password and token hashes included (the engine hides statement parameters,
    see ``db.make_engine``).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("sqlalchemy.engine").setLevel(max(root.level, logging.INFO))
    # SQLAlchemy names a pool's logger after its class, so our DeadlineQueuePool logs
    # under "authsvc." and its routine INFO lines (dispose, recreate) would reach ours.
    logging.getLogger("authsvc.storage.pool").setLevel(max(root.level, logging.WARNING))
