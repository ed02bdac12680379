"""The validation cache: recently validated token digests → (user, session), in process.

Correctness rests on three rules:

- a hit is only a shortcut for the lookup: the caller still checks expiry on every hit;
- every revocation or user change removes the affected entries (``invalidate``), on this
  replica at once and on the others through PostgreSQL ``NOTIFY`` (``authsvc.invalidation``);
- an entry is only stored if no invalidation happened while it was being looked up
  (the ``epoch`` check), so a lookup racing with a revocation cannot re-insert a
  revoked session after its invalidation.

While ``suspend``-ed (the listener lost its connection) the cache is empty and bypassed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar


class _HasIds(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...


E = TypeVar("E", bound=_HasIds)


class ValidationCache(Generic[E]):
    """A size-bounded LRU map of token digests to validated entries, safe across threads."""

    def __init__(self, size: int, *, active: bool = True) -> None:
        self.size = size
        self.hits = 0
        self._entries: OrderedDict[bytes, E] = OrderedDict()
        self._by_session: dict[str, set[bytes]] = {}
        self._by_user: dict[str, set[bytes]] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self._active = active and size > 0

    @property
    def active(self) -> bool:
        """True when lookups may be answered from the cache."""
        return self._active

    @property
    def epoch(self) -> int:
        """Read before a lookup and hand to ``put``: changes on every invalidation."""
        return self._epoch

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, digest: object) -> bool:
        return digest in self._entries

    def get(self, digest: bytes) -> E | None:
        """The cached entry for ``digest`` (None on a miss or while bypassed)."""
        if not self._active:
            return None
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            self._entries.move_to_end(digest)
            self.hits += 1
            return entry

    def put(self, digest: bytes, entry: E, epoch: int) -> None:
        """Stores ``entry`` unless the cache was invalidated since ``epoch`` was read."""
        with self._lock:
            if not self._active or epoch != self._epoch:
                return
            self._drop(digest)
            self._entries[digest] = entry
            self._by_session.setdefault(entry.session_id, set()).add(digest)
            self._by_user.setdefault(entry.user_id, set()).add(digest)
            while len(self._entries) > self.size:
                self._drop(next(iter(self._entries)))

    def invalidate(self, sessions: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        """Forgets every entry of the given session ids and user ids."""
        with self._lock:
            self._epoch += 1
            for session_id in sessions:
                for digest in list(self._by_session.get(session_id, ())):
                    self._drop(digest)
            for user_id in users:
                for digest in list(self._by_user.get(user_id, ())):
                    self._drop(digest)

    def suspend(self) -> None:
        """Empties the cache and bypasses it until ``resume`` (invalidations may be lost)."""
        with self._lock:
            self._active = False
            self._clear()

    def resume(self) -> None:
        """Empties the cache (anything may have changed meanwhile) and uses it again."""
        with self._lock:
            self._clear()
            self._active = self.size > 0

    def _clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._by_session.clear()
        self._by_user.clear()

    def _drop(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is None:
            return
        _discard(self._by_session, entry.session_id, digest)
        _discard(self._by_user, entry.user_id, digest)


def _discard(index: dict[str, set[bytes]], key: str, digest: bytes) -> None:
    digests = index.get(key)
    if digests is not None:
        digests.discard(digest)
        if not digests:
            del index[key]
