"""``authsvc import FILE.jsonl``: brings users of another system in, batch by batch.

Each line of the file is one JSON object (``FIELDS``): the profile's fields
(``rules.profile``: ``email``, the names and, optionally, ``locale``, BCP 47),
``password_hash`` and, optionally, ``email_verified`` (a boolean) and ``create_time``
(ISO 8601; without a zone it is UTC; ``2019-03-01 12:00:00`` as SQLite prints it works).
Each batch goes through exactly what ImportUsers runs (``edge.requests`` →
``flows.importing`` → ``edge.responses``), directly on the database: no server
needed, and no gRPC message limit. A progress line goes to stderr; the counts, and
the line number and reason of every refused user, to stdout. Running it again is safe:
the users it brought before are counted as existing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from authsvc.edge import requests, responses
from authsvc.flows.changes import Changes
from authsvc.flows.importing import Importing
from authsvc.rules import values
from authsvc.rules.profile import PROFILE
from authsvc.storage.engine import Database
from authsvc.storage.models import utcnow
from authsvc.storage.validation_cache import ValidationCache
from authsvc_client.v1 import auth_service_pb2 as pb

TEXT_FIELDS = (*(field.name for field in PROFILE), "password_hash")
FIELDS = (*TEXT_FIELDS, "email_verified", "create_time")
EMAIL_TAKEN = pb.ERROR_REASON_EMAIL_TAKEN


class Interrupted(Exception):
    """A batch failed (the database, say): the batches before it stay imported."""

    def __init__(self, tally: Tally, line: int, cause: Exception) -> None:
        super().__init__(f"stopped at line {line}: {type(cause).__name__}")
        self.tally = tally
        self.line = line


class BadLine(ValueError):
    """A line that is no importable JSON object; the message says why (never a hash)."""


@dataclass
class Tally:
    """What an import did so far."""

    imported: int = 0
    existing: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    started: float = field(default_factory=time.monotonic)

    @property
    def users(self) -> int:
        """Users read so far (blank lines aside)."""
        return self.imported + self.existing + len(self.refused)

    def rate(self) -> float:
        """Users per second since the start."""
        return self.users / max(time.monotonic() - self.started, 1e-9)

    def summary(self) -> str:
        """The closing line: the counts and the speed."""
        seconds = time.monotonic() - self.started
        return (
            f"imported {self.imported}, existing {self.existing}, refused {len(self.refused)} "
            f"({self.users} users in {seconds:.1f} s, {self.rate():.0f} users/s)"
        )


def to_message(obj: Any) -> pb.ImportedUser:
    """One parsed JSON line as the RPC's ImportedUser; raises BadLine."""
    if not isinstance(obj, dict):
        raise BadLine("is not a JSON object")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise BadLine(f"has unknown fields: {', '.join(unknown)} (expected {', '.join(FIELDS)})")
    user = pb.ImportedUser()
    for name in TEXT_FIELDS:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise BadLine(f"{name} must be a string")
        try:
            setattr(user, name, value or "")
        except ValueError:  # a lone surrogate ("\ud800") has no UTF-8 form
            raise BadLine(f"{name} is not valid Unicode") from None
    verified = obj.get("email_verified")
    if verified is not None and not isinstance(verified, bool):
        raise BadLine("email_verified must be true or false")
    user.email_verified = bool(verified)
    if obj.get("create_time") is not None:
        user.create_time.FromDatetime(_time(obj["create_time"]))
    return user


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise BadLine("create_time must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise BadLine("create_time is not an ISO 8601 time") from None


class Importer:
    """Runs the import flow on a database, one batch (one transaction) at a time."""

    def __init__(self, database: Database, batch_size: int) -> None:
        # New users have no sessions: there is nothing for a validation cache to forget.
        self._flow = Importing(Changes(database, ValidationCache(0), utcnow))
        self._batch_size = batch_size

    def run(self, source: BinaryIO, size: int, progress: TextIO) -> Tally:
        """Imports every line of ``source`` (``size`` bytes long), reporting progress.

        Raises Interrupted when a batch fails: that batch was rolled back, the ones
        before it are committed, so running the same import again resumes.
        """
        tally = Tally()
        shown = Progress(progress, size)
        for batch in _batches(source, self._batch_size):
            try:
                self._import(batch, tally)
            except Exception as exc:
                shown.done(tally)
                raise Interrupted(tally, batch[0][0], exc) from exc
            shown.update(tally, source.tell())
        shown.done(tally)
        return tally

    def _import(self, batch: list[tuple[int, bytes]], tally: Tally) -> None:
        numbers, users = [], []
        for number, raw in batch:
            try:
                users.append(to_message(parse_line(raw)))
                numbers.append(number)
            except BadLine as exc:
                tally.refused.append((number, f"INVALID_ARGUMENT: the line {exc}"))
        if not users:
            return
        checked = requests.import_users(pb.ImportUsersRequest(users=users))
        reply = responses.imported(self._flow.import_users(checked))
        for number, result in zip(numbers, reply.results, strict=True):
            _count(tally, number, result)
        tally.refused.sort()


def parse_line(raw: bytes) -> Any:
    """One line's JSON; raises BadLine. A user is a flat object: a line nested deeper is
    refused before it is parsed (5000 brackets would exhaust Python's recursion limit)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine("is not valid JSON") from None
    if values.nesting(text) > 1:
        raise BadLine("is not a JSON object of strings and booleans")
    try:
        return json.loads(text)
    except ValueError:
        raise BadLine("is not valid JSON") from None


def _count(tally: Tally, number: int, result: pb.ImportUserResult) -> None:
    if result.user_id:
        tally.imported += 1
    elif result.error.reason == EMAIL_TAKEN:
        tally.existing += 1
    else:
        reason = pb.ErrorReason.Name(result.error.reason).removeprefix("ERROR_REASON_")
        fields = "; ".join(
            f"{v.field.split('.', 1)[-1]} {v.description}" for v in result.error.field_violations
        )
        tally.refused.append((number, f"{reason}: {fields or result.error.message}"))


def _batches(source: BinaryIO, size: int) -> Iterator[list[tuple[int, bytes]]]:
    """The non-blank lines with their 1-based numbers, ``size`` at a time."""
    batch: list[tuple[int, bytes]] = []
    for number, raw in enumerate(iter(source.readline, b""), start=1):
        if raw.strip():
            batch.append((number, raw))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Progress:
    """One progress line on stderr: rewritten in place on a terminal, else every 10%."""

    def __init__(self, out: TextIO, size: int) -> None:
        self._out = out
        self._size = max(size, 1)
        self._tty = out.isatty()
        self._next_tenth = 1

    def update(self, tally: Tally, position: int) -> None:
        """Shows how far the import is."""
        fraction = min(position / self._size, 1.0)
        line = (
            f"{fraction:6.1%}  imported {tally.imported}  existing {tally.existing}  "
            f"refused {len(tally.refused)}  {tally.rate():.0f} users/s"
        )
        if self._tty:
            self._out.write(f"\r{line}")
        elif fraction * 10 >= self._next_tenth:
            self._out.write(f"{line}\n")
            self._next_tenth = int(fraction * 10) + 1
        self._out.flush()

    def done(self, tally: Tally) -> None:
        """Ends the progress line."""
        if self._tty:
            self._out.write("\n")
            self._out.flush()


def import_file(database: Database, path: Path, batch_size: int) -> Tally:
    """Imports the JSON-lines file at ``path``; progress to stderr. Raises OSError."""
    with path.open("rb") as source:
        return Importer(database, batch_size).run(source, path.stat().st_size, sys.stderr)
