"""Encryption of secrets authsvc must read back: TOTP seeds at rest, and the sealed
challenges of passkey sign-ins it hands out instead of storing them.

Fernet (AES-128-CBC + HMAC-SHA256) with rotation: ``AUTHSVC_SECRET_KEY`` lists keys,
the first encrypts, every one decrypts, so a new key goes first and an old one is
dropped once ``authsvc reencrypt-secrets`` has sealed the stored secrets again.
The keys never appear in a repr, so settings can be printed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import MfaNotConfigured
from authsvc.setting_names import AUTHSVC_SECRET_KEY

_NO_KEY_OPENS = f"no configured {AUTHSVC_SECRET_KEY} opens this secret"


class SecretKeys:
    """The configured keys; empty means "not configured" (TOTP enrolment is refused)."""

    __slots__ = ("_box",)

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._box = MultiFernet([Fernet(k) for k in keys]) if keys else None

    @classmethod
    def parse(cls, text: str) -> SecretKeys:
        """Comma-separated url-safe base64 32-byte keys (``Fernet.generate_key()``).

        Raises ValueError naming the position of a bad key (never the key).
        """
        keys = tuple(k.strip() for k in text.split(",") if k.strip())
        for index, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ValueError(f"key {index} is not a Fernet key") from None
        return cls(keys)

    @property
    def configured(self) -> bool:
        """True when at least one key is set."""
        return self._box is not None

    def seal(self, secret: str) -> str:
        """Encrypts with the first key. Raises MfaNotConfigured without keys."""
        return self._require().encrypt(secret.encode()).decode("ascii")

    def unseal(self, sealed: str) -> str:
        """Decrypts with any key. Raises MfaNotConfigured without keys, or when no
        configured key opens it (a key was dropped too early)."""
        try:
            return self._require().decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise MfaNotConfigured(_NO_KEY_OPENS) from None

    def open(self, sealed: str) -> str | None:
        """The secret, or None when no configured key opens it (forged, altered, not
        ASCII, or sealed with a dropped key). Raises MfaNotConfigured without keys."""
        box = self._require()
        try:
            return box.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            return None

    def reencrypt(self, sealed: str) -> str:
        """The secret encrypted with the first key (for key rotation). Raises
        MfaNotConfigured without keys, or when no configured key opens it."""
        try:
            return self._require().rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise MfaNotConfigured(_NO_KEY_OPENS) from None

    def _require(self) -> MultiFernet:
        if self._box is None:
            raise MfaNotConfigured(f"TOTP needs {AUTHSVC_SECRET_KEY}")
        return self._box

    def __repr__(self) -> str:
        return "SecretKeys(configured)" if self.configured else "SecretKeys(none)"

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


def reseal_column(
    db: DbSession, column: InstrumentedAttribute[Any], keys: SecretKeys, now: datetime
) -> int:
    """Seals every stored value of ``column`` (NULLs aside) again with the first key,
    after a key rotation, locking the rows; returns how many. Raises MfaNotConfigured
    without keys, or when a value opens with none of them."""
    rows = list(db.scalars(select(column.class_).where(column.is_not(None)).with_for_update()))
    for row in rows:
        setattr(row, column.key, keys.reencrypt(getattr(row, column.key)))
        row.updated_at = now
    db.flush()
    return len(rows)
