"""API keys: created, listed and revoked by the ``authsvc api-key`` command, and
resolved to a caller identity on each call that presents one (``x-api-key``).

Resolving is the hot part: a key is hashed and looked up by digest, and a live key's
name is kept in a small in-process cache for ``cache_ttl``. So a revocation reaches a
replica that has the key cached at most ``cache_ttl`` later (a revocation made by this
process reaches it at once); a key that is not live is never cached, so a new key works
at once everywhere.

A key that is not live goes through the secret check (``flows.secret_check``), as every
wrong secret does: audited, refused with ApiKeyInvalid. The check is ``uncounted``: a
key holds 256 random bits, so nobody guesses one and it needs no throttle. The lookup
stays in front of it, so a live key costs no more than its digest and a cache hit.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from authsvc.errors import ApiKeyInvalid
from authsvc.flows.changes import NO_USER, Changes
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules import api_keys
from authsvc.rules.audit import AuditEvent
from authsvc.storage.models import ApiKey

log = logging.getLogger(__name__)

CACHE_ENTRIES = 1024


@dataclass(frozen=True)
class KeyRecord:
    """What may be shown about a key: never the key, never its digest."""

    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        """The showable part of a stored key."""
        return cls(row.id, row.name, row.created_at, row.last_used_at, row.revoked_at)


class _NameCache:
    """Digest → (name, valid until): bounded, thread-safe, positive entries only."""

    def __init__(self, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[str, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> str | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[1] <= self._clock():
                self._entries.pop(digest, None)
                return None
            return entry[0]

    def put(self, digest: bytes, name: str) -> None:
        if self._ttl <= timedelta(0):
            return
        with self._lock:
            self._entries[digest] = (name, self._clock() + self._ttl)
            while len(self._entries) > CACHE_ENTRIES:
                self._entries.popitem(last=False)

    def forget(self, digests: list[bytes]) -> None:
        with self._lock:
            for digest in digests:
                self._entries.pop(digest, None)


class ApiKeys:
    """The API keys of calling services."""

    def __init__(self, changes: Changes, cache_ttl: timedelta) -> None:
        self._changes = changes
        self._cache = _NameCache(cache_ttl, changes.clock)
        self._check = SecretCheck.uncounted(changes, AuditEvent.API_KEY_REJECTED, ApiKeyInvalid)

    def create(self, name: str) -> tuple[KeyRecord, str]:
        """Creates a key for the caller identity ``name``; audited.

        Returns its record and the key, which is stored nowhere (only its SHA-256).
        Raises Rejected when the name is not valid (``rules.api_keys.key_name``).
        """
        name = api_keys.key_name(name)
        with self._changes.open() as change:
            row, key = api_keys.issue(change.db, name, change.now)
            change.audit(AuditEvent.API_KEY_CREATED, NO_USER, _detail(row), **_fields(row))
            change.event("api_key.created", api_key_id=str(row.id), name=row.name)
        return KeyRecord.of(row), key

    def list_all(self) -> list[KeyRecord]:
        """Every key, live and revoked, by name then age."""
        with self._changes.read() as db:
            return [KeyRecord.of(row) for row in api_keys.list_keys(db)]

    def revoke(self, name: str = "", key_id: uuid.UUID | None = None) -> list[KeyRecord]:
        """Revokes every live key named ``name`` (or the one live key ``key_id``); each
        revocation is audited. Returns the revoked keys (empty: nothing live matched)."""
        with self._changes.open() as change:
            revoked = api_keys.revoke(change.db, change.now, name=name, key_id=key_id)
            for row in revoked:
                change.audit(AuditEvent.API_KEY_REVOKED, NO_USER, _detail(row), **_fields(row))
                change.event("api_key.revoked", api_key_id=str(row.id), name=row.name)
        self._cache.forget([row.key_hash for row in revoked])
        return [KeyRecord.of(row) for row in revoked]

    def identify(self, key: str) -> str | None:
        """The caller identity (name) of the live key ``key``; None when it is unknown,
        revoked or malformed. Raises StorageUnavailable when the database is down."""
        digest = api_keys.digest_of(key)
        if digest is None:
            return None
        name = self._cache.get(digest)
        if name is not None:
            return name
        with self._changes.read() as db:
            row = api_keys.find_live(db, digest)
        if row is None:
            return None
        if api_keys.needs_touch(row, self._changes.clock()):
            self._touch(row.id)
        self._cache.put(digest, row.name)
        return row.name

    def refuse(self, caller: str, method: str) -> NoReturn:
        """Refuses a call for its API key (not live, or several sent) through the secret
        check: audited (and logged), never counted. Raises ApiKeyInvalid, also when the
        audit row could not be written (that is logged)."""
        try:
            self._check.refuse(NO_USER, f"{caller} {method}", caller=caller, method=method)
        except ApiKeyInvalid:
            raise
        except Exception:  # the call is refused whether or not the event could be written
            log.warning("could not audit a rejected API key", exc_info=True)
        raise ApiKeyInvalid()

    def _touch(self, key_id: uuid.UUID) -> None:
        try:
            with self._changes.open() as change:
                api_keys.touch(change.db, key_id, change.now)
        except Exception:  # a hint only: never fail a call for it
            log.warning("could not record an API key's last use", exc_info=True)


def _detail(row: ApiKey) -> str:
    return f"{row.name} ({row.id})"


def _fields(row: ApiKey) -> dict[str, str]:
    return {"key_name": row.name, "key_id": str(row.id)}
