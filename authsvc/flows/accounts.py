"""Accounts: sign-up, profile, disabling, deletion, listing.

In ``smtp`` mail mode a sign-up may mail a verification link
(``AUTHSVC_VERIFY_EMAIL_ON_SIGN_UP``), a changed email gets a notice at the old address,
and disabling a user mails them a notice. With ``AUTHSVC_SIGN_UP_ENUMERATION_SAFE`` a
sign-up with a taken email answers as a new one would (a user that is never stored) and
mails the owner instead, so CreateUser tells no stranger which addresses have accounts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from authsvc.errors import EmailTaken
from authsvc.flows.changes import Changes, Who
from authsvc.flows.email_verification import EmailVerification
from authsvc.rules import sessions, user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hashing import Hasher
from authsvc.rules.mail import MailKind
from authsvc.rules.users import Profile, ProfileChanges
from authsvc.storage.models import User
from authsvc.storage.paging import Page, PageRequest

log = logging.getLogger("authsvc.mail")


@dataclass(frozen=True)
class NewUser:
    """A checked sign-up: who, and the password to hash (already within policy)."""

    profile: Profile
    password: str


class Accounts:
    """CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers, DisableUser, EnableUser."""

    def __init__(
        self, changes: Changes, hasher: Hasher, verification: EmailVerification | None = None
    ) -> None:
        self._changes = changes
        self._hasher = hasher
        self._verification = verification

    def create_user(self, new: NewUser) -> User:
        """Signs up a user; hashes outside the transaction. Raises EmailTaken (unless
        sign-up is enumeration-safe)."""
        password_hash = self._hasher.hash(new.password)
        policy = self._changes.outbox.policy
        try:
            with self._changes.open() as change:
                user = users.create_user(change.db, new.profile, password_hash)
                change.audit(AuditEvent.USER_CREATED, Who(user.id))
                if policy.verify_on_sign_up and self._verification is not None:
                    self._verification.issue_in(change, user)
        except EmailTaken:
            if not (policy.enabled and policy.sign_up_enumeration_safe):
                raise
            return self._taken(new)
        return user

    def _taken(self, new: NewUser) -> User:
        """The answer to a sign-up with a taken email, when that must not show: a user
        as a new one would look (never stored), and a mail to the address's owner."""
        with self._changes.open() as change:
            owner = users.find_by_email(change.db, new.profile.email)
            if owner is not None:
                change.mail(MailKind.SIGN_UP_ATTEMPT, owner, Who(owner.id))
            log.info("sign-up with a taken email answered as a new one")
            now = change.now
        p = new.profile
        return User(
            id=uuid.uuid4(),
            email=p.email,
            first_name=p.first_name,
            last_name=p.last_name,
            locale=p.locale,
            created_at=now,
            updated_at=now,
            email_verified_at=None,
            disabled_at=None,
        )

    def get_user(self, user_id: uuid.UUID) -> User:
        """Raises UserNotFound."""
        with self._changes.read() as db:
            return users.get_user(db, user_id)

    def update_user(self, user_id: uuid.UUID, changes: ProfileChanges) -> User:
        """Raises UserNotFound or EmailTaken."""
        with self._changes.open() as change:
            old_email = users.get_user(change.db, user_id).email
            user = users.update_user(change.db, user_id, changes)
            change.changed_user(user_id)
            if user.email != old_email:
                change.mail(
                    MailKind.EMAIL_CHANGED,
                    user,
                    Who(user_id),
                    address=old_email,
                    old_email=old_email,
                    new_email=user.email,
                )
        return user

    def delete_user(self, user_id: uuid.UUID) -> None:
        """Deletes the user and all its sessions. Raises UserNotFound."""
        with self._changes.open() as change:
            users.delete_user(change.db, user_id)
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_DELETED, Who(user_id))

    def disable_user(self, user_id: uuid.UUID) -> User:
        """Disables the user and, in the same transaction, ends every session of the
        user (on every replica) and every unused reset or verification token.

        Raises UserNotFound. Disabling a disabled user changes nothing but is audited.
        """
        with self._changes.open() as change:
            was_disabled = users.get_user(change.db, user_id).is_disabled
            user = users.set_disabled(change.db, user_id, True, change.now)
            ended = sessions.revoke_all(change.db, user_id)
            user_tokens.forget(change.db, user_id)
            change.ended(*ended)
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_DISABLED, Who(user_id), f"{len(ended)} sessions ended")
            if not was_disabled:
                change.mail(MailKind.ACCOUNT_DISABLED, user, Who(user_id))
        return user

    def enable_user(self, user_id: uuid.UUID) -> User:
        """Lets a disabled user sign in again (no session comes back). Raises UserNotFound."""
        with self._changes.open() as change:
            user = users.set_disabled(change.db, user_id, False, change.now)
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_ENABLED, Who(user_id))
        return user

    def list_users(self, request: PageRequest) -> Page[User]:
        """One page of users, oldest first."""
        with self._changes.read() as db:
            return users.list_users(db, request)
