"""Rules for users: sign-up, profile updates, deletion, listing.

Functions take a SQLAlchemy Session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authsvc import fields, pagination
from authsvc.errors import EmailTaken, InvalidArgument, UserNotFound
from authsvc.models import User, utcnow
from authsvc.passwords import check_policy

UPDATABLE = ("first_name", "last_name", "email")


@dataclass(frozen=True)
class NewUser:
    """A checked and normalized sign-up request."""

    email: str
    password: str
    first_name: str
    last_name: str


def check_new_user(email: str, password: str, first_name: str, last_name: str) -> NewUser:
    """Normalizes a sign-up request; raises InvalidArgument naming every bad field."""
    v = fields.Violations()
    new = NewUser(
        email=v.check(fields.email, email),
        password=v.check(_password, password, "password"),
        first_name=v.check(fields.name, first_name, "first_name"),
        last_name=v.check(fields.name, last_name, "last_name"),
    )
    v.raise_any()
    return new


def _password(password: str, field: str) -> str:
    check_policy(fields.required(password, field), field)
    return password


def create_user(db: Session, new: NewUser, password_hash: str) -> User:
    """Inserts the user; raises EmailTaken when the email is registered (any case)."""
    user = User(
        email=new.email,
        first_name=new.first_name,
        last_name=new.last_name,
        password_hash=password_hash,
    )
    db.add(user)
    _flush_unique_email(db)
    return user


def _flush_unique_email(db: Session) -> None:
    # The unique index decides races between concurrent sign-ups: the loser's flush fails.
    try:
        db.flush()
    except IntegrityError:
        raise EmailTaken() from None


def get_user(db: Session, user_id: uuid.UUID) -> User:
    """The user with ``user_id``; raises UserNotFound."""
    user = db.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


def find_by_email(db: Session, email: str) -> User | None:
    """The user registered with ``email`` (already normalized), if any."""
    return db.scalar(select(User).where(User.email == email))


def check_update(values: dict[str, str], mask: list[str]) -> dict[str, str]:
    """The checked changes of an UpdateUser request (AIP-134); raises InvalidArgument.

    An empty mask means every updatable field that is set; ``*`` means all of them.
    """
    unknown = [p for p in mask if p not in (*UPDATABLE, "*")]
    if unknown:
        raise InvalidArgument.of("update_mask", f"cannot update {', '.join(unknown)}")
    if "*" in mask:
        paths = list(UPDATABLE)
    else:
        paths = list(dict.fromkeys(mask)) or [f for f in UPDATABLE if values.get(f)]
    if not paths:
        raise InvalidArgument.of("update_mask", "names no field to update")
    v = fields.Violations()
    changes = {
        path: v.check(fields.email, values[path], "user.email")
        if path == "email"
        else v.check(fields.name, values[path], f"user.{path}")
        for path in paths
    }
    v.raise_any()
    return changes


def update_user(db: Session, user_id: uuid.UUID, changes: dict[str, str]) -> User:
    """Applies ``changes``; raises UserNotFound or EmailTaken."""
    user = get_user(db, user_id)
    for name, value in changes.items():
        setattr(user, name, value)
    _flush_unique_email(db)
    return user


def set_password_hash(db: Session, user_id: uuid.UUID, old_hash: str, new_hash: str) -> bool:
    """Replaces the hash if it is still ``old_hash``; False when it changed meanwhile."""
    result = db.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == old_hash)
        .values(password_hash=new_hash, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delete_user(db: Session, user_id: uuid.UUID) -> None:
    """Deletes the user; the database cascades to its sessions. Raises UserNotFound."""
    result = db.execute(
        delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise UserNotFound()


def list_users(db: Session, size: int, token: str) -> tuple[list[User], str]:
    """One page of users, oldest first, and the next page's token ("" on the last)."""
    return pagination.page(db, select(User), User, size, token, scope="users")
