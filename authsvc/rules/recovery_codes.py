"""Recovery codes: ten single-use codes, shown once, stored as salted SHA-256 digests.

Each code carries 80 random bits (16 base32 characters, shown as four groups), so a
fast digest is as safe against an offline search as a slow hash of a short code would
be; the user's id salts it, so equal codes of two users differ. A code is spent by a
conditional UPDATE (``used_at IS NULL``): of two concurrent uses, exactly one wins.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import RecoveryCode

COUNT = 10
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols, no 0/o or 1/l look-alikes
_LENGTH = 16


def new_code() -> str:
    """One fresh code, ``xxxx-xxxx-xxxx-xxxx``."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _LENGTH, 4))


def normalize(code: str) -> str:
    """The code as typed, without spaces or dashes, lower-cased."""
    return code.replace("-", "").replace(" ", "").strip().lower()


def looks_like_code(code: str) -> bool:
    """True when ``code`` has the shape of a recovery code."""
    plain = normalize(code)
    return len(plain) == _LENGTH and all(c in _ALPHABET for c in plain)


def digest(user_id: uuid.UUID, code: str) -> bytes:
    """The stored digest of ``code`` for ``user_id``."""
    return hashlib.sha256(user_id.bytes + normalize(code).encode()).digest()


def replace(db: DbSession, user_id: uuid.UUID, now: datetime) -> list[str]:
    """Issues a new set of codes for the user (the old ones stop working); returns them."""
    remove_all(db, user_id)
    codes = [new_code() for _ in range(COUNT)]
    for code in codes:
        db.add(
            RecoveryCode(
                user_id=user_id, code_hash=digest(user_id, code), created_at=now, updated_at=now
            )
        )
    db.flush()
    return codes


def is_unused(db: DbSession, user_id: uuid.UUID, code: str) -> bool:
    """True when ``code`` is one of the user's unused codes."""
    found = db.scalar(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == digest(user_id, code),
            RecoveryCode.used_at.is_(None),
        )
    )
    return found is not None


def spend(db: DbSession, user_id: uuid.UUID, code: str, now: datetime) -> bool:
    """Marks ``code`` used; True only for the one call that found it unused."""
    done = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == digest(user_id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def remove_all(db: DbSession, user_id: uuid.UUID) -> None:
    """Deletes every recovery code of the user."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
