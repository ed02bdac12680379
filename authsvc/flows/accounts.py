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
from functools import partial

from authsvc.errors import EmailTaken
from authsvc.flows.changes import Changes, Origin, Who
from authsvc.flows.email_verification import EmailVerification
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules import sessions, user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hashing import Hasher
from authsvc.rules.mail import MailKind
from authsvc.rules.profile import Profile, ProfileChanges
from authsvc.storage.paging import Page, PageRequest
from authsvc.storage.read_model import UserView, view_of

log = logging.getLogger("authsvc.mail")


@dataclass(frozen=True)
class NewUser:
    """A checked sign-up: who, the password to hash (already within policy), and where
    the end user is."""

    profile: Profile
    password: str
    origin: Origin


@dataclass(frozen=True)
class ProfileUpdate:
    """A checked UpdateUser request: whose profile, and the fields it sets."""

    user_id: uuid.UUID
    changes: ProfileChanges


class Accounts:
    """CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers, DisableUser, EnableUser."""

    def __init__(
        self,
        changes: Changes,
        hasher: Hasher,
        sign_ups: SecretCheck,
        verification: EmailVerification | None = None,
    ) -> None:
        self._changes = changes
        self._hasher = hasher
        self._sign_ups = sign_ups
        self._verification = verification

    def create_user(self, new: NewUser) -> UserView:
        """Signs up a user; hashes outside the transaction.

        Raises EmailTaken (unless sign-up is enumeration-safe), or TooManyAttempts: a
        sign-up costs a hash, so each one counts against the end user's address (when
        known) before hashing, and only one whose password could not be hashed
        (overload, a deadline) is uncounted.
        """
        who = new.origin.who()
        attempt = self._sign_ups.begin(self._sign_ups.keys(None, who.ip_address), who)
        hashing = partial(self._hasher.hash, new.password)
        password_hash = self._sign_ups.unless_unchecked(attempt, hashing)
        policy = self._changes.outbox.policy
        try:
            with self._changes.open() as change:
                user = users.create_user(change.db, new.profile, password_hash, change.now)
                change.audit(AuditEvent.USER_CREATED, new.origin.who(user.id))
                change.event("user.created", Who(user.id), **new.profile.event_data())
                if policy.verify_on_sign_up and self._verification is not None:
                    self._verification.issue_in(change, user)
                created = view_of(user)
        except EmailTaken:
            if not (policy.enabled and policy.sign_up_enumeration_safe):
                raise
            return self._taken(new)
        return created

    def _taken(self, new: NewUser) -> UserView:
        """The answer to a sign-up with a taken email, when that must not show: a user
        as a new one would look (never stored), and a mail to the address's owner."""
        with self._changes.open() as change:
            owner = users.find_by_email(change.db, new.profile.email)
            if owner is not None:
                change.mail(MailKind.SIGN_UP_ATTEMPT, owner, Who(owner.id))
            log.info("sign-up with a taken email answered as a new one")
            now = change.now
        return UserView(uuid.uuid4(), now, now, None, None, dict(new.profile.values))

    def get_user(self, user_id: uuid.UUID) -> UserView:
        """Raises UserNotFound."""
        with self._changes.read() as db:
            return view_of(users.get_user(db, user_id))

    def update_user(self, update: ProfileUpdate) -> UserView:
        """Raises UserNotFound or EmailTaken. Audited, with its event, when a field changes:
        the audit entry names the fields whose value changed (never a value)."""
        user_id, changes = update.user_id, update.changes
        with self._changes.open() as change:
            before = users.lock(change.db, user_id)
            old = {name: getattr(before, name) for name in changes.values}
            user = users.update_user(change.db, user_id, changes, change.now)
            changed = sorted(n for n, v in changes.values.items() if old[n] != v)
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
                if emailed:
                    change.mail(
                        MailKind.EMAIL_CHANGED,
                        user,
                        Who(user_id),
                        address=old["email"],
                        old_email=old["email"],
                        new_email=user.email,
                    )
            return view_of(user)

    def delete_user(self, user_id: uuid.UUID) -> None:
        """Deletes the user and all its sessions. Raises UserNotFound."""
        with self._changes.open() as change:
            email = users.lock(change.db, user_id).email
            change.revoked_all(user_id, sessions.revoke_all(change.db, user_id), "deleted")
            users.delete_user(change.db, user_id)
            change.audit(AuditEvent.USER_DELETED, Who(user_id))
            change.event("user.deleted", Who(user_id), email=email)

    def disable_user(self, user_id: uuid.UUID) -> UserView:
        """Disables the user and, in the same transaction, ends every session of the
        user (on every replica) and every unused reset or verification token.

        Raises UserNotFound. Disabling a disabled user changes nothing but is audited.
        """
        with self._changes.open() as change:
            was_disabled = users.lock(change.db, user_id).is_disabled
            user = users.set_disabled(change.db, user_id, True, change.now)
            ended = sessions.revoke_all(change.db, user_id)
            user_tokens.forget(change.db, user_id)
            change.revoked_all(user_id, ended, "disabled")
            change.audit(AuditEvent.USER_DISABLED, Who(user_id), f"{len(ended)} sessions ended")
            if not was_disabled:
                change.event("user.disabled", Who(user_id))
                change.mail(MailKind.ACCOUNT_DISABLED, user, Who(user_id))
            return view_of(user)

    def enable_user(self, user_id: uuid.UUID) -> UserView:
        """Lets a disabled user sign in again (no session comes back). Raises UserNotFound."""
        with self._changes.open() as change:
            was_disabled = users.lock(change.db, user_id).is_disabled
            user = users.set_disabled(change.db, user_id, False, change.now)
            change.changed_user(user_id)
            change.audit(AuditEvent.USER_ENABLED, Who(user_id))
            if was_disabled:
                change.event("user.enabled", Who(user_id))
            return view_of(user)

    def list_users(self, request: PageRequest) -> Page[UserView]:
        """One page of users, oldest first."""
        with self._changes.read() as db:
            found = users.list_users(db, request)
            return Page([view_of(u) for u in found.items], found.next)
