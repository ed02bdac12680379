"""API keys: how a calling service proves its name without a client certificate.

A key is ``asv_ak_`` + 256 random bits (``rules.tokens``) and names a caller identity,
the same identities the caller policy grants RPCs to. Only the key's SHA-256 is stored,
so a key is found by its digest: an equality lookup on a unique index, which compares no
secret byte by byte in Python and so tells a guesser nothing through timing. A revoked
key stays in the table (``revoked_at``), so ``authsvc api-key list`` shows its history.

Functions take a SQLAlchemy session and never commit; the calling flow owns the
transaction.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session as DbSession

from authsvc.rules.tokens import TokenKind, is_well_formed, new_token, token_hash
from authsvc.rules.values import Rejected
from authsvc.storage.models import ApiKey

NAME_MAX = 64
# Names are identities in the caller policy: a service name, a DNS name, a SPIFFE-like URI.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")
#: ``last_used_at`` is written at most this often per key and replica: a hint, not a log.
TOUCH_EVERY = timedelta(minutes=1)


def key_name(value: str) -> str:
    """A valid key name: 1 to 64 letters, digits or ``. _ : / @ -``, starting alphanumeric.

    Raises Rejected saying what is wrong.
    """
    if not value:
        raise Rejected("is required")
    if len(value) > NAME_MAX:
        raise Rejected(f"must be at most {NAME_MAX} characters")
    if not _NAME.match(value):
        raise Rejected("may hold only letters, digits and . _ : / @ - (starting alphanumeric)")
    return value


def digest_of(key: str) -> bytes | None:
    """The stored digest of ``key``, or None when it is not shaped like an API key."""
    return token_hash(key) if is_well_formed(key, TokenKind.API_KEY) else None


def issue(db: DbSession, name: str, now: datetime) -> tuple[ApiKey, str]:
    """Adds a new key named ``name`` (already checked by ``key_name``).

    Returns the row and the key itself, which exists nowhere else afterwards.
    """
    key = new_token(TokenKind.API_KEY)
    row = ApiKey(name=name, key_hash=token_hash(key), created_at=now, updated_at=now)
    db.add(row)
    db.flush()
    return row, key


def find_live(db: DbSession, digest: bytes) -> ApiKey | None:
    """The unrevoked key with this digest, if any."""
    query = select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    return db.scalars(query).one_or_none()


def needs_touch(key: ApiKey, now: datetime) -> bool:
    """True when ``last_used_at`` is older than ``TOUCH_EVERY`` (or unset)."""
    return key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY


def touch(db: DbSession, key_id: uuid.UUID, now: datetime) -> None:
    """Sets ``last_used_at`` unless another replica did so within ``TOUCH_EVERY``."""
    db.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - TOUCH_EVERY),
        )
        .values(last_used_at=now, updated_at=now)
    )


def list_keys(db: DbSession) -> list[ApiKey]:
    """Every key, live and revoked, by name then age."""
    return list(db.scalars(select(ApiKey).order_by(ApiKey.name, ApiKey.created_at, ApiKey.id)))


def revoke(
    db: DbSession, now: datetime, *, name: str = "", key_id: uuid.UUID | None = None
) -> list[ApiKey]:
    """Revokes the live keys named ``name``, or the one live key ``key_id``.

    Returns the keys it revoked (none when nothing live matched). Rows are locked first
    (PostgreSQL), so two concurrent revocations report each key once.
    """
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None)).with_for_update()
    query = (
        query.where(ApiKey.id == key_id) if key_id is not None else query.where(ApiKey.name == name)
    )
    revoked = list(db.scalars(query))
    for key in revoked:
        key.revoked_at = now
        key.updated_at = now
    db.flush()
    return revoked
