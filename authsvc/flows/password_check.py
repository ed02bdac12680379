"""The password check, written once for sign-in, ChangePassword and step-up.

A presented password goes through the flow's ``SecretCheck`` (``flows.secret_check``)
in one order, whatever the flow:

1. In one of the hasher's preparing turns (``Hasher.preparing``: a burst of checks waits
   there, blocked, instead of crowding the hot path with reads and throttle writes), the
   flow's reads find whose password it should be (the ``Claimant``), and the attempt is
   counted against that account's email (and the end user's address, when known).
2. The password is hashed outside the turn and outside any transaction. An unknown
   account checks a dummy hash, so it costs the same time, fails alike and is
   throttled alike (``Hasher.verify``).
3. The flow's success transaction uncounts the attempt (``succeeded``).

All three flows share the account's throttle (one password, guessed three ways); each
audits its failures and refusals under its own events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from authsvc.flows.changes import Change, Who
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules.hashing import Hasher
from authsvc.rules.throttling import Attempt
from authsvc.storage.models import User


@dataclass(frozen=True)
class Claimant:
    """Whose password is presented: the account's email (what the attempt is counted
    against), its user (None: no account has that email), and whom events concern."""

    email: str
    user: User | None
    who: Who


@dataclass(frozen=True)
class ProvenPassword:
    """A right password: its user, whom events concern, and the counted attempt the
    flow's success transaction uncounts."""

    user: User
    who: Who
    attempt: Attempt


class PasswordCheck:
    """Checks a password with one flow's ``SecretCheck`` on the hasher's threads."""

    def __init__(self, hasher: Hasher, check: SecretCheck) -> None:
        self._hasher = hasher
        self._check = check

    def prove(self, find: Callable[[], Claimant], password: str) -> ProvenPassword:
        """Runs ``find`` (the flow's reads) and counts the attempt in a preparing turn,
        then checks ``password`` against the found user's hash.

        Raises what ``find`` raises; TooManyAttempts (nothing hashed) while the account
        or address is blocked; the check's failure (InvalidCredentials) for a wrong
        password or an unknown account; Overloaded or DeadlineExceeded, uncounted, when
        no hash could be run.
        """
        with self._hasher.preparing():  # a burst prepares a few at a time
            claimant = find()
            keys = self._check.keys(claimant.email, claimant.who.ip_address)
            attempt = self._check.begin(keys, claimant.who)
        user, who = claimant.user, claimant.who
        stored = user.password_hash if user is not None else None
        self._check.verify(attempt, who, lambda: self._hasher.verify(stored, password))
        assert user is not None  # verify() fails without a stored hash
        return ProvenPassword(user, who, attempt)

    def succeeded(self, change: Change, proven: ProvenPassword) -> None:
        """Uncounts the proven password's attempt in the flow's success transaction."""
        self._check.succeeded(change, proven.attempt)
