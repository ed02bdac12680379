"""TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of drift either way.

Each accepted code moves the factor's ``last_used_step`` forward with a conditional
UPDATE (``last_used_step < step``), so a code (indeed its whole time step) is accepted
once, on whichever replica sees it first; ``now`` comes from the flow's clock.
Seeds are stored sealed (``rules.secrets_at_rest``).
"""

from __future__ import annotations

import hmac
import re
import uuid
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import TotpAlreadyEnrolled, TotpNotEnrolled
from authsvc.storage.models import TotpFactor

STEP_SECONDS = 30
DRIFT_STEPS = 1
_CODE = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    """A fresh base32 seed of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps scan."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def looks_like_code(code: str) -> bool:
    """True for six digits (anything else is not a TOTP code)."""
    return bool(_CODE.match(code))


def time_step(now: datetime) -> int:
    """The RFC 6238 counter of ``now``."""
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step within the drift window whose code is ``code``, else None.

    Every candidate is compared in constant time.
    """
    current = time_step(now)
    totp = pyotp.TOTP(secret)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def start(db: DbSession, user_id: uuid.UUID, sealed: str, now: datetime, ttl: timedelta) -> None:
    """Replaces the user's pending enrolment with a new one expiring after ``ttl``.

    Raises TotpAlreadyEnrolled when the user has a confirmed TOTP.
    """
    if active(db, user_id) is not None:
        raise TotpAlreadyEnrolled()
    db.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    db.add(
        TotpFactor(
            user_id=user_id,
            secret=sealed,
            expires_at=now + ttl,
            last_used_step=0,
            created_at=now,
            updated_at=now,
        )
    )
    db.flush()


def active(db: DbSession, user_id: uuid.UUID) -> TotpFactor | None:
    """The user's confirmed TOTP, if any."""
    return db.scalar(
        select(TotpFactor).where(
            TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
        )
    )


def pending(db: DbSession, user_id: uuid.UUID, now: datetime) -> TotpFactor:
    """The user's unexpired, unconfirmed enrolment; raises TotpNotEnrolled without one."""
    found = db.scalar(
        select(TotpFactor).where(
            TotpFactor.user_id == user_id,
            TotpFactor.confirmed_at.is_(None),
            TotpFactor.expires_at > now,
        )
    )
    if found is None:
        raise TotpNotEnrolled()
    return found


def consume_step(
    db: DbSession, factor_id: uuid.UUID, step: int, now: datetime, confirm: bool = False
) -> bool:
    """Accepts ``step`` once: True when no code of this or a later step was used before.

    With ``confirm``, also confirms a still-pending, unexpired enrolment (and only that).
    """
    query = update(TotpFactor).where(TotpFactor.id == factor_id, TotpFactor.last_used_step < step)
    values: dict[str, object] = {"last_used_step": step, "updated_at": now}
    if confirm:
        query = query.where(TotpFactor.confirmed_at.is_(None), TotpFactor.expires_at > now)
        values.update(confirmed_at=now, expires_at=None)
    else:
        query = query.where(TotpFactor.confirmed_at.is_not(None))
    done = db.execute(query.values(**values).execution_options(synchronize_session=False))
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def remove(db: DbSession, user_id: uuid.UUID) -> bool:
    """Deletes the user's TOTP (pending or confirmed); True when there was one."""
    done = db.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    return bool(done.rowcount)  # type: ignore[attr-defined]
