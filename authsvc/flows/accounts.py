"""Accounts: sign-up, profile, disabling, deletion, listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from authsvc.flows.changes import Changes, Who
from authsvc.rules import sessions, user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hashing import Hasher
from authsvc.rules.users import Profile, ProfileChanges
from authsvc.storage.models import User
from authsvc.storage.paging import Page, PageRequest


@dataclass(frozen=True)
class NewUser:
    """A checked sign-up: who, and the password to hash (already within policy)."""

    profile: Profile
    password: str


class Accounts:
    """CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers, DisableUser, EnableUser."""

    def __init__(self, changes: Changes, hasher: Hasher) -> None:
        self._changes = changes
        self._hasher = hasher

    def create_user(self, new: NewUser) -> User:
        """Signs up a user; hashes outside the transaction. Raises EmailTaken."""
        password_hash = self._hasher.hash(new.password)
        with self._changes.open() as change:
            user = users.create_user(change.db, new.profile, password_hash)
            change.audit(AuditEvent.USER_CREATED, Who(user.id))
            change.event("user.created", Who(user.id), **new.profile.event_data())
        return user

    def get_user(self, user_id: uuid.UUID) -> User:
        """Raises UserNotFound."""
        with self._changes.read() as db:
            return users.get_user(db, user_id)

    def update_user(self, user_id: uuid.UUID, changes: ProfileChanges) -> User:
        """Raises UserNotFound or EmailTaken. Audited, with its event, when a field changes."""
        with self._changes.open() as change:
            before = users.lock(change.db, user_id)
            old = {name: getattr(before, name) for name in changes.items()}
            user = users.update_user(change.db, user_id, changes)
            changed = sorted(n for n, v in changes.items().items() if old[n] != v)
            change.changed_user(user_id)
            if changed:
                change.audit(AuditEvent.USER_UPDATED, Who(user_id), " ".join(changed))
                emailed = "email" in changed
                change.event(
                    "user.updated",
                    Who(user_id),
                    fields=changed,
                    old_email=old["email"] if emailed else "",
                    new_email=user.email if emailed else "",
                )
        return user

    def delete_user(self, user_id: uuid.UUID) -> None:
        """Deletes the user and all its sessions. Raises UserNotFound."""
        with self._changes.open() as change:
            email = users.lock(change.db, user_id).email
            change.revoked(user_id, sessions.revoke_all(change.db, user_id), "deleted")
            users.delete_user(change.db, user_id)
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_DELETED, Who(user_id))
            change.event("user.deleted", Who(user_id), email=email)

    def disable_user(self, user_id: uuid.UUID) -> User:
        """Disables the user and, in the same transaction, ends every session of the
        user (on every replica) and every unused reset or verification token.

        Raises UserNotFound. Disabling a disabled user changes nothing but is audited.
        """
        with self._changes.open() as change:
            was_disabled = users.lock(change.db, user_id).is_disabled
            user = users.set_disabled(change.db, user_id, True, change.now)
            ended = sessions.revoke_all(change.db, user_id)
            user_tokens.forget(change.db, user_id)
            change.revoked(user_id, ended, "disabled")
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_DISABLED, Who(user_id), f"{len(ended)} sessions ended")
            if not was_disabled:
                change.event("user.disabled", Who(user_id))
        return user

    def enable_user(self, user_id: uuid.UUID) -> User:
        """Lets a disabled user sign in again (no session comes back). Raises UserNotFound."""
        with self._changes.open() as change:
            was_disabled = users.lock(change.db, user_id).is_disabled
            user = users.set_disabled(change.db, user_id, False, change.now)
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_ENABLED, Who(user_id))
            if was_disabled:
                change.event("user.enabled", Who(user_id))
        return user

    def list_users(self, request: PageRequest) -> Page[User]:
        """One page of users, oldest first."""
        with self._changes.read() as db:
            return users.list_users(db, request)
