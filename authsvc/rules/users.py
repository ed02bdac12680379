"""Rules for users: sign-up, profile updates, password hashes, verification, disabling,
deletion, listing.

Functions take a SQLAlchemy session and never commit; the calling flow owns the
transaction. Their inputs are already checked values (``rules.values``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import EmailTaken, UserDisabled, UserNotFound
from authsvc.rules import challenges, user_tokens
from authsvc.rules.profile import Profile, ProfileChanges
from authsvc.rules.values import Email
from authsvc.storage.models import User
from authsvc.storage.paging import Page, PageRequest, page


def create_user(db: DbSession, profile: Profile, password_hash: str, now: datetime) -> User:
    """Inserts the user, created at ``now``; raises EmailTaken when the email is
    registered (any case)."""
    user = User(**profile.values, password_hash=password_hash, created_at=now, updated_at=now)
    db.add(user)
    _flush_unique_email(db)
    return user


#: The most users one ImportUsers call (or one batch of ``authsvc import``) takes.
IMPORT_BATCH_MAX = 1000


@dataclass(frozen=True)
class ImportedUser:
    """A checked user from another system, with its old password hash (kept as is)."""

    profile: Profile
    password_hash: str
    email_verified: bool = False
    create_time: datetime | None = None


def insert_imported(
    db: DbSession, imported: Sequence[ImportedUser], now: datetime
) -> list[uuid.UUID | None]:
    """Inserts the users whose email is not registered yet, in one statement.

    Returns, in order, each new user's id, or None where the email was registered
    already (before, by a concurrent sign-up, or earlier in ``imported``): the unique
    index decides, so a re-run or a race never duplicates a user nor fails the batch.
    """
    if not imported:
        return []
    ids = [uuid.uuid4() for _ in imported]
    rows = [_imported_row(new_id, user, now) for new_id, user in zip(ids, imported, strict=True)]
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    # The table, not the entity: one executemany, whatever keys hold None.
    table = User.metadata.tables[User.__tablename__]
    statement = (
        dialect.insert(table).on_conflict_do_nothing(index_elements=["email"]).returning(table.c.id)
    )
    inserted = set(db.execute(statement, rows).scalars())
    return [new_id if new_id in inserted else None for new_id in ids]


def _imported_row(new_id: uuid.UUID, user: ImportedUser, now: datetime) -> dict[str, object]:
    created = user.create_time or now
    return {
        "id": new_id,
        **user.profile.values,
        "password_hash": user.password_hash,
        # The old system's verification time is unknown: its creation time stands in.
        "email_verified_at": created if user.email_verified else None,
        "created_at": created,
        "updated_at": now,
    }


def _flush_unique_email(db: DbSession) -> None:
    # The unique index decides races between concurrent sign-ups: the loser's flush fails.
    try:
        db.flush()
    except IntegrityError:
        raise EmailTaken() from None


def get_user(db: DbSession, user_id: uuid.UUID) -> User:
    """The user with ``user_id``; raises UserNotFound."""
    user = db.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


def find_by_email(db: DbSession, email: Email) -> User | None:
    """The user registered with ``email``, if any."""
    return db.scalar(select(User).where(User.email == email))


def lock(db: DbSession, user_id: uuid.UUID) -> User:
    """The user, locked until the transaction ends (as ``lock_active``, disabled or not);
    raises UserNotFound. What a change reads under it (the old email, whether the user
    was disabled) is what it changes: its account event says exactly what happened."""
    user = db.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise UserNotFound()
    return user


def lock_active(db: DbSession, user_id: uuid.UUID) -> User:
    """The user, locked until the transaction ends; raises UserNotFound or UserDisabled.

    The lock orders a sign-in or token use after a concurrent DisableUser (whose
    update it waits for), so no session or password outlives the disabling. It is
    PostgreSQL's FOR NO KEY UPDATE, not a share lock: the callers go on to update the
    user row, and two share holders upgrading at once would deadlock. Session inserts
    (FOR KEY SHARE of the foreign key) do not wait for it.
    """
    user = lock(db, user_id)
    if user.is_disabled:
        raise UserDisabled()
    return user


def update_user(db: DbSession, user_id: uuid.UUID, changes: ProfileChanges, now: datetime) -> User:
    """Applies ``changes`` (updated at ``now`` if any value differs); raises
    UserNotFound or EmailTaken.

    A new email is unverified: the verification is cleared, and every reset or
    verification token sent to the old address stops working.
    """
    user = get_user(db, user_id)
    if any(getattr(user, name) != value for name, value in changes.values.items()):
        user.updated_at = now
    if changes.email is not None and changes.email != user.email:
        user.email_verified_at = None
        user_tokens.forget(db, user_id)
    for name, value in changes.values.items():
        setattr(user, name, value)
    _flush_unique_email(db)
    return user


def rehash_password(
    db: DbSession, user_id: uuid.UUID, old_hash: str, new_hash: str, now: datetime
) -> bool:
    """Stores a new hash of the same password (a sign-in upgrading its method) if the
    hash is still ``old_hash``; False when it changed meanwhile."""
    result = db.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == old_hash)
        .values(password_hash=new_hash, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_password(
    db: DbSession, user_id: uuid.UUID, new_hash: str, now: datetime, replacing: str | None = None
) -> bool:
    """Sets a new password: every password change (ChangePassword, SetPassword, a reset).

    Replaces the hash (only if it is still ``replacing``, when given) and ends the
    user's pending sign-in challenges, whose password step proved the old password.
    False, changing nothing, when the user is gone or ``replacing`` no longer matches.
    """
    matching = User.id == user_id
    if replacing is not None:
        matching &= User.password_hash == replacing
    result = db.execute(
        update(User)
        .where(matching)
        .values(password_hash=new_hash, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    challenges.forget_sign_ins(db, user_id)
    return True


def mark_verified(db: DbSession, user: User, now: datetime) -> None:
    """Records that ``user`` proved the email address (the first time is kept)."""
    if user.email_verified_at is None:
        user.email_verified_at = now
    user.updated_at = now
    db.flush()


def set_disabled(db: DbSession, user_id: uuid.UUID, disabled: bool, now: datetime) -> User:
    """Disables (keeping the first time) or enables the user; raises UserNotFound."""
    user = get_user(db, user_id)
    if disabled != user.is_disabled:
        user.disabled_at = now if disabled else None
        user.updated_at = now
    db.flush()
    return user


def delete_user(db: DbSession, user_id: uuid.UUID) -> None:
    """Deletes the user; the database cascades to its sessions. Raises UserNotFound."""
    result = db.execute(
        delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise UserNotFound()


def list_users(db: DbSession, request: PageRequest) -> Page[User]:
    """One page of users, oldest first."""
    return page(db, select(User), User, request)
