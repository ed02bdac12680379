"""The throttled secret check: count, delay, verify, reset.

Every secret presented on someone's behalf (a password at sign-in, the current password
of ChangePassword and step-up, which ``flows.password_check`` checks; second factors;
wrong reset and verification tokens, which ``flows.token_check`` looks up first) and
every API key a calling service presents (``flows.api_keys``, which looks a key up, and
keeps live ones cached, first) goes through one ``SecretCheck`` with the flow's own
``ThrottlePolicy`` and audit events; so do sign-ups and reset starts, which are only
counted. Its keys name an account, a user or an end-user address, never one shared by
everyone:

1. ``begin`` counts the attempt against its keys *before* the secret is checked, in its
   own transaction; while a key is blocked it audits the refusal, commits, and raises
   TooManyAttempts (with how long to wait), checking nothing.
2. ``verify`` checks the secret outside any transaction; a wrong one is audited and
   raises the flow's failure (``refuse``); one that could not be checked at all
   (overload, a deadline) is uncounted, so load alone never throttles anyone.
3. The flow's success transaction calls ``succeeded``, which resets the counts.

An ``uncounted`` check (API keys: 256 random bits, which nobody guesses) has no policy:
it counts nothing and never throttles, and only audits and refuses wrong secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from authsvc.errors import AuthError, TooManyAttempts
from authsvc.flows.changes import Change, Changes, Who
from authsvc.rules import throttling
from authsvc.rules.audit import AuditEvent
from authsvc.rules.throttling import Attempt, Blocked, Key, ThrottlePolicy

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CheckEvents:
    """What a check audits: a wrong secret, and an attempt refused unchecked."""

    failed: AuditEvent
    throttled: AuditEvent


class SecretCheck:
    """One kind of secret check: its policy, its events, and the error a wrong secret gets."""

    def __init__(
        self,
        changes: Changes,
        policy: ThrottlePolicy | None,
        events: CheckEvents,
        wrong: Callable[[], AuthError],
    ) -> None:
        self.policy = policy
        self._changes = changes
        self._events = events
        self._wrong = wrong

    @classmethod
    def uncounted(
        cls, changes: Changes, failed: AuditEvent, wrong: Callable[[], AuthError]
    ) -> SecretCheck:
        """A check without a policy: its attempts have no keys, so it never throttles
        (and never audits a throttled attempt); a wrong secret is audited ``failed``."""
        return cls(changes, None, CheckEvents(failed, failed), wrong)

    def keys(self, subject: str | None, ip_address: str = "") -> list[Key]:
        """The keys of an attempt on ``subject`` (None: no subject key) from
        ``ip_address`` (may be empty); none for an ``uncounted`` check."""
        if self.policy is None:
            return []
        return throttling.keys(subject, ip_address, self.policy)

    def begin(self, keys: list[Key], who: Who) -> Attempt:
        """Counts an attempt; raises TooManyAttempts (after auditing it) while blocked.

        An attempt with no keys is counted nowhere (and costs no transaction).
        """
        if not keys or self.policy is None:
            return Attempt(None, [])
        with self._changes.open() as change:
            outcome = throttling.begin(change.db, keys, change.now, self.policy)
            if isinstance(outcome, Blocked):
                change.audit(self._events.throttled, who)
        if isinstance(outcome, Blocked):
            raise TooManyAttempts(outcome.retry_after)
        return outcome

    def verify(self, attempt: Attempt, who: Who, check: Callable[[], bool]) -> None:
        """Runs ``check``; a False result is refused (``refuse``)."""
        if not self.unless_unchecked(attempt, check):
            self.refuse(who)

    def refuse(self, who: Who, detail: str = "", **log: str) -> NoReturn:
        """Audits a wrong secret (its counted attempt stays counted) and raises the
        flow's failure. ``log`` adds fields to the log line only (never the secret)."""
        self._changes.record(self._events.failed, who, detail, **log)
        raise self._wrong()

    def unless_unchecked(self, attempt: Attempt, work: Callable[[], T]) -> T:
        """Runs ``work`` (a hash, a lookup) for a counted attempt, and returns its result.

        If ``work`` raises (overload, a deadline) the attempt is uncounted before the
        error propagates: load alone never throttles anyone.
        """
        try:
            return work()
        except Exception:
            self._release(attempt)
            raise

    def succeeded(self, change: Change, attempt: Attempt) -> None:
        """Uncounts a successful attempt in the flow's success transaction."""
        throttling.succeeded(change.db, attempt, change.now)

    def _release(self, attempt: Attempt) -> None:
        try:
            with self._changes.open() as change:
                throttling.release(change.db, attempt)
        except Exception:  # the original error matters more; this one is logged
            log.warning("could not uncount an unchecked attempt", exc_info=True)
