"""Brute-force throttling of secret checks, per subject and per end-user IP, in the database.

A subject is what a secret unlocks: for sign-in (and ChangePassword) the account's
email. Every attempt is counted *before* its secret is checked, under a row lock on its
keys (``throttle_counters``), and uncounted if it succeeds. So concurrent attempts can
never slip past a limit, the limits hold across replicas and restarts, and a crash
mid-attempt errs on the safe side (the attempt stays counted).

- Subject (for sign-in the normalized email, known or not, so throttling reveals nothing
  about which accounts exist): after ``threshold`` consecutive failures, each further
  failure blocks the subject for ``base_delay * 2**(n - threshold)``, capped at
  ``max_delay``. Success resets the count; so does ``forget_after`` without a failure.
  Besides, at most ``subject_limit`` failures in any sliding ``subject_window``.
- End-user IP (when the edge knows one: the address a trusted caller asserts, else the
  caller's own): at most ``ip_limit`` failures in any sliding ``ip_window``, across
  accounts. Some checks have no subject, only this key (wrong mailed tokens, sign-ups).

No key is ever shared by everyone: each names an account, a user or an address, so
nobody's wrong secrets can make somebody else's right one fail from elsewhere.

A refused attempt is neither counted nor extends a delay, so nobody can keep an
account's owner out for longer than the schedule. Each flow that checks a secret has its
own ``ThrottlePolicy`` (its scope names its keys).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import ThrottleCounter, ThrottleFailure

# Beyond this exponent every delay is the cap anyway; avoids computing huge powers.
_MAX_EXPONENT = 40


@dataclass(frozen=True)
class ThrottlePolicy:
    """The limits of one kind of secret check (built from the settings)."""

    #: Names the subject keys of this policy: policies with one scope share counters.
    scope: str
    threshold: int
    base_delay: timedelta
    max_delay: timedelta
    subject_limit: int
    subject_window: timedelta
    ip_limit: int
    ip_window: timedelta
    forget_after: timedelta
    #: Counts end-user IPs apart from every other policy (True for attempts that are
    #: no failures, like starting a password reset, which must not eat sign-in budget).
    own_ip_keys: bool = False

    def delay(self, failures: int) -> timedelta:
        """How long a subject is blocked after ``failures`` consecutive failures."""
        if failures < self.threshold:
            return timedelta(0)
        exponent = failures - self.threshold
        if exponent >= _MAX_EXPONENT:
            return self.max_delay
        grown: timedelta = self.base_delay * (1 << exponent)
        return min(grown, self.max_delay)


@dataclass(frozen=True)
class Key:
    """What attempts are counted against: a subject or an end-user IP."""

    digest: bytes
    limit: int
    window: timedelta
    is_subject: bool


def _digest(kind: str, subject: str) -> bytes:
    # Only a digest is stored: the table never holds emails or addresses.
    return hashlib.sha256(f"{kind}\0{subject}".encode()).digest()


def subject_key(subject: str, policy: ThrottlePolicy) -> Key:
    """The key of what a secret unlocks (for sign-in, the normalized email)."""
    digest = _digest(policy.scope, subject)
    return Key(digest, policy.subject_limit, policy.subject_window, True)


def ip_key(ip_address: str, policy: ThrottlePolicy) -> Key:
    """The key of an end-user IP address (canonical form), shared by every policy
    (unless the policy has ``own_ip_keys``)."""
    kind = f"{policy.scope}-ip" if policy.own_ip_keys else "ip"
    return Key(_digest(kind, ip_address), policy.ip_limit, policy.ip_window, False)


def keys(subject: str | None, ip_address: str, policy: ThrottlePolicy) -> list[Key]:
    """The keys of an attempt: its subject (None: it has none), and its end-user IP
    when one is known. May be empty: an attempt with no key is counted nowhere."""
    found = [] if subject is None else [subject_key(subject, policy)]
    if ip_address:
        found.append(ip_key(ip_address, policy))
    return found


@dataclass(frozen=True)
class Blocked:
    """An attempt refused unchecked: the keys are blocked for ``retry_after``."""

    retry_after: timedelta


@dataclass(frozen=True)
class Attempt:
    """A counted attempt, to uncount with ``succeeded`` if the secret was right.

    ``blocked_until`` is the delay it started (if any) and ``previous_block`` the one
    it replaced, so ``release`` can undo it.
    """

    subject: bytes | None  # None for an attempt without a subject key
    failure_ids: list[uuid.UUID]
    blocked_until: datetime | None = None
    previous_block: datetime | None = None


def begin(
    db: DbSession, keys: list[Key], now: datetime, policy: ThrottlePolicy
) -> Attempt | Blocked:
    """Counts an attempt on every key before its secret is checked.

    While any key is blocked, counts nothing and returns Blocked.
    """
    counters = _lock(db, [k.digest for k in keys], now)
    wait = max((_wait(db, key, counters[key.digest], now) for key in keys), default=timedelta(0))
    if wait > timedelta(0):
        return Blocked(wait)
    ids = [_count(db, key, now) for key in keys]
    subject = next((k.digest for k in keys if k.is_subject), None)
    if subject is None:
        return Attempt(None, ids)
    previous = counters[subject].blocked_until
    blocked = _count_consecutive(db, subject, counters[subject], now, policy)
    return Attempt(subject, ids, blocked, previous)


def succeeded(db: DbSession, attempt: Attempt, now: datetime) -> None:
    """Uncounts a successful attempt and resets its subject's consecutive failures."""
    db.execute(delete(ThrottleFailure).where(ThrottleFailure.id.in_(attempt.failure_ids)))
    if attempt.subject is None:
        return
    db.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == attempt.subject)
        .values(failures=0, blocked_until=None, updated_at=now)
    )


def release(db: DbSession, attempt: Attempt) -> None:
    """Uncounts an attempt whose secret could not be checked (e.g. overload).

    Only the counts go back: a delay started since by another attempt stays.
    """
    db.execute(delete(ThrottleFailure).where(ThrottleFailure.id.in_(attempt.failure_ids)))
    if attempt.subject is None:
        return
    subject = ThrottleCounter.key == attempt.subject
    db.execute(
        update(ThrottleCounter)
        .where(subject, ThrottleCounter.failures > 0)
        .values(failures=ThrottleCounter.failures - 1)
    )
    if attempt.blocked_until is not None:
        db.execute(
            update(ThrottleCounter)
            .where(subject, ThrottleCounter.blocked_until == attempt.blocked_until)
            .values(blocked_until=attempt.previous_block)
        )


def _lock(db: DbSession, digests: list[bytes], now: datetime) -> dict[bytes, ThrottleCounter]:
    # Sorted, so two attempts sharing keys lock them in the same order (no deadlock).
    # The upsert creates or touches the row and, on PostgreSQL, locks it: a purge
    # running meanwhile sees it fresh and leaves it.
    for digest in sorted(digests):
        new = _upsert(db).values(
            id=uuid.uuid4(), key=digest, failures=0, created_at=now, updated_at=now
        )
        db.execute(
            new.on_conflict_do_update(
                index_elements=["key"], set_={"updated_at": new.excluded.updated_at}
            )
        )
    # SQLite has no FOR UPDATE: there BEGIN IMMEDIATE already serializes writers.
    rows = db.scalars(
        select(ThrottleCounter)
        .where(ThrottleCounter.key.in_(digests))
        .order_by(ThrottleCounter.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.key: row for row in rows}


def _upsert(db: DbSession) -> Any:
    # Both dialects' insert() have on_conflict_do_update; the core one does not.
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(ThrottleCounter)


def _wait(db: DbSession, key: Key, counter: ThrottleCounter, now: datetime) -> timedelta:
    waits = [timedelta(0)]
    if key.is_subject and counter.blocked_until is not None:
        waits.append(counter.blocked_until - now)
    # The oldest of the newest `limit` failures in the window: once it leaves the
    # window, fewer than `limit` remain.
    oldest = db.scalar(
        select(ThrottleFailure.created_at)
        .where(ThrottleFailure.key == key.digest, ThrottleFailure.created_at > now - key.window)
        .order_by(ThrottleFailure.created_at.desc())
        .offset(key.limit - 1)
        .limit(1)
    )
    if oldest is not None:
        waits.append(oldest + key.window - now)
    return max(waits)


def _count(db: DbSession, key: Key, now: datetime) -> uuid.UUID:
    db.execute(
        delete(ThrottleFailure).where(
            ThrottleFailure.key == key.digest, ThrottleFailure.created_at <= now - key.window
        )
    )
    failure_id = uuid.uuid4()
    db.execute(
        insert(ThrottleFailure).values(
            id=failure_id, key=key.digest, created_at=now, updated_at=now
        )
    )
    return failure_id


def _count_consecutive(
    db: DbSession, digest: bytes, counter: ThrottleCounter, now: datetime, policy: ThrottlePolicy
) -> datetime | None:
    """Counts a failure of the subject; returns the delay it starts, if any."""
    last = counter.last_failure_at
    forgotten = last is None or last <= now - policy.forget_after
    # An atomic increment: concurrent failures all count, whatever the isolation level.
    failures = db.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == digest)
        .values(
            failures=1 if forgotten else ThrottleCounter.failures + 1,
            last_failure_at=now,
            updated_at=now,
        )
        .returning(ThrottleCounter.failures)
    ).scalar_one()
    if failures < policy.threshold:
        return None
    blocked_until = now + policy.delay(failures)
    db.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == digest)
        .values(blocked_until=blocked_until)
    )
    return blocked_until
