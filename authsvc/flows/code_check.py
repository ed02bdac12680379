"""The second-factor check: a user's TOTP or recovery code, throttled, spent once.

Shared by enrolment and removal (``flows.factor_enrolment``), CompleteSignIn (``flows.sign_in``)
and step-up (``flows.step_up``). ``verify`` runs the throttled check (scope ``totp``,
keyed by user: TOTP and recovery codes share one counter); ``spend``, inside the
flow's success transaction, consumes what matched with a conditional UPDATE. A replay
(a time step already used, a recovery code already spent, on any replica) is audited
there and makes ``spend`` return False: the flow leaves its block, then raises
CodeInvalid, so the audit row is kept and the attempt stays counted as a failure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from authsvc.errors import TotpNotEnrolled
from authsvc.flows.changes import Change, Changes, Who
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules import recovery_codes, totp
from authsvc.rules.audit import AuditEvent
from authsvc.rules.authentication import AuthMethod
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.throttling import Attempt
from authsvc.storage.models import TotpFactor


@dataclass(frozen=True)
class Code:
    """A code the user typed, and which kind the request said it is."""

    method: AuthMethod  # TOTP or RECOVERY_CODE
    value: str


@dataclass(frozen=True)
class Verified:
    """A code that matched, to spend in the success transaction."""

    user_id: uuid.UUID
    code: Code
    attempt: Attempt
    factor_id: uuid.UUID | None = None
    step: int = 0
    confirm: bool = False


class CodeCheck:
    """Verifies and spends TOTP and recovery codes."""

    def __init__(self, changes: Changes, check: SecretCheck, keys: SecretKeys) -> None:
        self._changes = changes
        self._check = check
        self._keys = keys

    def verify(self, user_id: uuid.UUID, code: Code, who: Who, enrolling: bool = False) -> Verified:
        """Checks ``code`` against the user's active TOTP (pending one when ``enrolling``)
        or recovery codes. Raises TotpNotEnrolled, CodeInvalid or TooManyAttempts."""
        factor = self._factor(user_id, enrolling)
        attempt = self._check.begin(self._check.keys(str(user_id), who.ip_address), who)
        if code.method is AuthMethod.RECOVERY_CODE:
            self._check.verify(attempt, who, lambda: self._unused(user_id, code.value))
            return Verified(user_id, code, attempt)
        secret = self._keys.unseal(factor.secret)
        found: list[int] = []

        def matches() -> bool:
            step = totp.matching_step(secret, code.value, self._changes.clock())
            found.extend([] if step is None else [step])
            return bool(found)

        self._check.verify(attempt, who, matches)
        return Verified(user_id, code, attempt, factor.id, found[0], enrolling)

    def spend(self, change: Change, verified: Verified, who: Who) -> bool:
        """Consumes the code in ``change``; False (audited) when it was already used."""
        if verified.code.method is AuthMethod.RECOVERY_CODE:
            spent = recovery_codes.spend(
                change.db, verified.user_id, verified.code.value, change.now
            )
        else:
            assert verified.factor_id is not None
            spent = totp.consume_step(
                change.db, verified.factor_id, verified.step, change.now, verified.confirm
            )
        if not spent:
            change.audit(AuditEvent.TOTP_REPLAYED, who, verified.code.method.value)
            return False
        if verified.code.method is AuthMethod.RECOVERY_CODE:
            change.audit(AuditEvent.RECOVERY_CODE_USED, who)
        self._check.succeeded(change, verified.attempt)
        return True

    def _factor(self, user_id: uuid.UUID, enrolling: bool) -> TotpFactor:
        with self._changes.read() as db:
            if enrolling:
                return totp.pending(db, user_id, self._changes.clock())
            found = totp.active(db, user_id)
        if found is None:
            raise TotpNotEnrolled()
        return found

    def _unused(self, user_id: uuid.UUID, code: str) -> bool:
        if not recovery_codes.looks_like_code(code):
            return False
        with self._changes.read() as db:
            return recovery_codes.is_unused(db, user_id, code)
