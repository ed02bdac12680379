"""Brute-force throttling of sign-ins, per account and per end-user IP, in the database.

Every attempt is counted *before* its password is checked, under a row lock on its
keys (``throttle_counters``), and uncounted if it succeeds. So concurrent attempts can
never slip past a limit, the limits hold across replicas and restarts, and a crash
mid-attempt errs on the safe side (the attempt stays counted).

- Account (the normalized email, known or not, so throttling reveals nothing about
  which accounts exist): after ``threshold`` consecutive failures, each further failure
  blocks the account for ``base_delay * 2**(n - threshold)``, capped at ``max_delay``.
  Success resets the count; so does ``forget_after`` without a failure. Besides, at
  most ``account_limit`` failures in any sliding ``account_window``.
- End-user IP (only when the caller sends one): at most ``ip_limit`` failures in any
  sliding ``ip_window``, across accounts.

A refused attempt is neither counted nor extends a delay, so nobody can keep an
account's owner out for longer than the schedule.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from authsvc.config import Settings
from authsvc.errors import TooManyAttempts
from authsvc.models import ThrottleCounter, ThrottleFailure

# Beyond this exponent every delay is the cap anyway; avoids computing huge powers.
_MAX_EXPONENT = 40


@dataclass(frozen=True)
class ThrottlePolicy:
    """The thresholds (from Settings)."""

    threshold: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    account_limit: int = 100
    account_window: timedelta = timedelta(hours=1)
    ip_limit: int = 50
    ip_window: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, s: Settings) -> ThrottlePolicy:
        """The policy the ``AUTHSVC_THROTTLE_*`` settings describe."""
        return cls(
            threshold=s.throttle_account_threshold,
            base_delay=s.throttle_base_delay,
            max_delay=s.throttle_max_delay,
            account_limit=s.throttle_account_limit,
            account_window=s.throttle_account_window,
            ip_limit=s.throttle_ip_limit,
            ip_window=s.throttle_ip_window,
            forget_after=s.throttle_forget_after,
        )

    def delay(self, failures: int) -> timedelta:
        """How long an account is blocked after ``failures`` consecutive failures."""
        if failures < self.threshold:
            return timedelta(0)
        exponent = failures - self.threshold
        if exponent >= _MAX_EXPONENT:
            return self.max_delay
        grown: timedelta = self.base_delay * (1 << exponent)
        return min(grown, self.max_delay)


@dataclass(frozen=True)
class Key:
    """What attempts are counted against: an account or an end-user IP."""

    digest: bytes
    limit: int
    window: timedelta
    is_account: bool


def _digest(kind: str, subject: str) -> bytes:
    # Only a digest is stored: the table never holds emails or addresses.
    return hashlib.sha256(f"{kind}\0{subject}".encode()).digest()


def account_key(email: str, policy: ThrottlePolicy) -> Key:
    """The key of the account registered (or not) with the normalized ``email``."""
    return Key(_digest("account", email), policy.account_limit, policy.account_window, True)


def ip_key(ip_address: str, policy: ThrottlePolicy) -> Key:
    """The key of an end-user IP address (canonical form)."""
    return Key(_digest("ip", ip_address), policy.ip_limit, policy.ip_window, False)


def sign_in_keys(email: str, ip_address: str, policy: ThrottlePolicy) -> list[Key]:
    """The keys of a sign-in: its account, and its IP when the caller sent one."""
    keys = [account_key(email, policy)]
    if ip_address:
        keys.append(ip_key(ip_address, policy))
    return keys


@dataclass(frozen=True)
class Attempt:
    """A counted attempt, to uncount with ``succeeded`` if the password was right.

    ``blocked_until`` is the delay it started (if any) and ``previous_block`` the one
    it replaced, so ``release`` can undo it.
    """

    account: bytes
    failure_ids: list[uuid.UUID]
    blocked_until: datetime | None = None
    previous_block: datetime | None = None


def begin(db: Session, keys: list[Key], now: datetime, policy: ThrottlePolicy) -> Attempt:
    """Counts an attempt on every key before its password is checked.

    Raises TooManyAttempts (counting nothing) while any key is blocked.
    """
    counters = _lock(db, [k.digest for k in keys], now)
    wait = max(_wait(db, key, counters[key.digest], now) for key in keys)
    if wait > timedelta(0):
        raise TooManyAttempts(wait)
    ids = [_count(db, key, now) for key in keys]
    account = next(k.digest for k in keys if k.is_account)
    previous = counters[account].blocked_until
    blocked = _count_consecutive(db, account, counters[account], now, policy)
    return Attempt(account, ids, blocked, previous)


def succeeded(db: Session, attempt: Attempt, now: datetime) -> None:
    """Uncounts a successful attempt and resets its account's consecutive failures."""
    db.execute(delete(ThrottleFailure).where(ThrottleFailure.id.in_(attempt.failure_ids)))
    db.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key == attempt.account)
        .values(failures=0, blocked_until=None, updated_at=now)
    )


def release(db: Session, attempt: Attempt) -> None:
    """Uncounts an attempt whose password could not be checked (e.g. overload).

    Only the counts go back: a delay started since by another attempt stays.
    """
    db.execute(delete(ThrottleFailure).where(ThrottleFailure.id.in_(attempt.failure_ids)))
    account = ThrottleCounter.key == attempt.account
    db.execute(
        update(ThrottleCounter)
        .where(account, ThrottleCounter.failures > 0)
        .values(failures=ThrottleCounter.failures - 1)
    )
    if attempt.blocked_until is not None:
        db.execute(
            update(ThrottleCounter)
            .where(account, ThrottleCounter.blocked_until == attempt.blocked_until)
            .values(blocked_until=attempt.previous_block)
        )


def _lock(db: Session, digests: list[bytes], now: datetime) -> dict[bytes, ThrottleCounter]:
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


def _upsert(db: Session) -> Any:
    # Both dialects' insert() have on_conflict_do_update; the core one does not.
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(ThrottleCounter)


def _wait(db: Session, key: Key, counter: ThrottleCounter, now: datetime) -> timedelta:
    waits = [timedelta(0)]
    if key.is_account and counter.blocked_until is not None:
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


def _count(db: Session, key: Key, now: datetime) -> uuid.UUID:
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
    db: Session, digest: bytes, counter: ThrottleCounter, now: datetime, policy: ThrottlePolicy
) -> datetime | None:
    """Counts a failure of the account; returns the delay it starts, if any."""
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


def purge(db: Session, now: datetime, policy: ThrottlePolicy) -> int:
    """Deletes throttling state that no longer matters; returns how many rows went."""
    window = max(policy.account_window, policy.ip_window)
    failures = db.execute(delete(ThrottleFailure).where(ThrottleFailure.created_at <= now - window))
    # A counter untouched for that long holds nothing that still counts.
    stale = ThrottleCounter.updated_at <= now - max(policy.forget_after, window)
    idle = or_(ThrottleCounter.blocked_until.is_(None), ThrottleCounter.blocked_until <= now)
    counters = db.execute(delete(ThrottleCounter).where(stale, idle))
    return int(failures.rowcount + counters.rowcount)  # type: ignore[attr-defined]
