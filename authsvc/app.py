"""The use cases behind each RPC: transactions around the domain rules.

Password hashing happens outside transactions, so a slow hash never holds a database
connection or lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from authsvc import audit, fields, invalidation, purge, sessions, throttle, users
from authsvc.audit import AuditEvent
from authsvc.config import Settings
from authsvc.db import Database
from authsvc.errors import AuthError, InvalidCredentials, RefreshTokenReused, TooManyAttempts
from authsvc.invalidation import Changes, Listener
from authsvc.logs import security_event
from authsvc.models import AuditRecord, Session, User, utcnow
from authsvc.passwords import MAX_LENGTH, Hasher, check_policy
from authsvc.validation import TokenValidator, Validated, make_lookup
from authsvc.validation_cache import ValidationCache

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class SignIn:
    """What a successful sign-in returns."""

    user: User
    issued: sessions.IssuedSession


class AuthApp:
    """One method per RPC, in domain terms (no protobuf here)."""

    def __init__(self, settings: Settings, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.hasher = Hasher(
            settings.password_hash,
            settings.hash_slots,
            settings.hash_queue_timeout.total_seconds(),
        )
        self.policy = sessions.SessionPolicy(
            ttl=settings.session_ttl,
            refresh_ttl=settings.refresh_ttl,
            max_age=settings.session_max_age,
            max_per_user=settings.max_sessions_per_user,
        )
        self.cache: ValidationCache[Validated] = ValidationCache(settings.cache_size)
        self.validator = TokenValidator(make_lookup(settings.database_url), self.cache, clock)
        # Other replicas' revocations reach the cache only through a LISTEN connection.
        self.listener = (
            Listener(settings.database_url, self.cache)
            if self.cache.size and not settings.is_sqlite
            else None
        )
        self.purge_batch_size = settings.purge_batch_size
        self.throttle = throttle.ThrottlePolicy.from_settings(settings)
        self.audit_retention = settings.audit_retention

    def start(self) -> None:
        """Starts the background parts (the invalidation listener)."""
        if self.listener:
            self.listener.start()

    def close(self) -> None:
        """Stops the background parts and closes every database connection."""
        if self.listener:
            self.listener.stop()
        self.validator.close()
        self.hasher.close()
        self.db.dispose()

    @contextmanager
    def _changing(self) -> Iterator[tuple[DbSession, Changes]]:
        """A write transaction whose recorded Changes reach every validation cache.

        Other replicas are notified from inside the transaction (so only if it commits,
        including when an error with ``commit`` set ends it); this replica's cache
        forgets them before the call returns.
        """
        changes = Changes()
        try:
            with self.db.transaction() as db:
                try:
                    yield db, changes
                except AuthError as exc:
                    if exc.commit:
                        invalidation.publish(db, changes)
                    raise
                invalidation.publish(db, changes)
        finally:
            if changes:
                self.cache.invalidate(changes.sessions, changes.users)

    # Users

    def create_user(self, email: str, password: str, first_name: str, last_name: str) -> User:
        """Signs up a user. Raises InvalidArgument or EmailTaken."""
        new = users.check_new_user(email, password, first_name, last_name)
        password_hash = self.hasher.hash(new.password)
        with self.db.transaction() as db:
            user = users.create_user(db, new, password_hash)
            self._audit(db, AuditEvent.USER_CREATED, user_id=user.id)
        security_event("user_created", user.id)
        return user

    def get_user(self, user_id: str) -> User:
        """Raises InvalidArgument or UserNotFound."""
        uid = fields.uuid_id(user_id, "id")
        with self.db.transaction(writes=False) as db:
            return users.get_user(db, uid)

    def update_user(self, user_id: str, values: dict[str, str], mask: list[str]) -> User:
        """Updates the masked fields. Raises InvalidArgument, UserNotFound, EmailTaken."""
        uid = fields.uuid_id(user_id, "user.id")
        changes = users.check_update(values, mask)
        with self._changing() as (db, changed):
            user = users.update_user(db, uid, changes)
            changed.user(uid)
        return user

    def delete_user(self, user_id: str) -> None:
        """Deletes the user and all its sessions. Raises InvalidArgument, UserNotFound."""
        uid = fields.uuid_id(user_id, "id")
        with self._changing() as (db, changed):
            users.delete_user(db, uid)
            changed.user(uid)
            self._audit(db, AuditEvent.USER_DELETED, user_id=uid)
        security_event("user_deleted", uid)

    def list_users(self, page_size: int, page_token: str) -> tuple[list[User], str]:
        """One page of users. Raises InvalidArgument."""
        size = fields.page_size(page_size)
        with self.db.transaction(writes=False) as db:
            return users.list_users(db, size, page_token)

    def change_password(self, session_token: str, current: str, new: str) -> None:
        """Changes the password of the token's user and ends the user's other sessions.

        Raises InvalidArgument, TokenInvalid, TokenExpired, InvalidCredentials or
        TooManyAttempts: the current password is throttled like a sign-in of the
        user's account, so a stolen session token is no unthrottled password oracle.
        """
        v = fields.Violations()
        v.check(fields.required, session_token, "session_token")
        v.check(fields.required, current, "current_password")
        v.check(_new_password, new)
        v.raise_any()
        with self.db.transaction() as db:
            user, session = sessions.validate(db, session_token, self.clock())
            who = {"user_id": user.id, "session_id": session.id}
            keys = [throttle.account_key(user.email, self.throttle)]
            attempt = self._begin(db, keys, AuditEvent.PASSWORD_CHANGE_THROTTLED, **who)
        if not self._verify(attempt, user.password_hash, current):
            self._record(AuditEvent.PASSWORD_CHANGE_FAILED, **who)
            security_event("password_change_failed", user.id)
            raise InvalidCredentials()
        new_hash = self.hasher.hash(new)
        with self._changing() as (db, changed):
            sessions.validate(db, session_token, self.clock())
            if not users.set_password_hash(db, user.id, user.password_hash, new_hash):
                raise InvalidCredentials()  # changed concurrently: the current one is stale
            sessions.revoke_others(db, user.id, keep=session.id)
            changed.user(user.id)
            throttle.succeeded(db, attempt, self.clock())
            self._audit(db, AuditEvent.PASSWORD_CHANGED, **who)
        security_event("password_changed", user.id)

    # Sessions

    def sign_in(self, email: str, password: str, user_agent: str, ip_address: str) -> SignIn:
        """Opens a session. Raises InvalidArgument, InvalidCredentials or TooManyAttempts.

        An unknown email costs the same hash as a wrong password, fails alike and is
        throttled alike. A throttled attempt runs no hash.
        """
        v = fields.Violations()
        email = v.check(fields.email, email)
        v.check(fields.required, password, "password")
        user_agent = v.check(fields.user_agent, user_agent)
        ip_address = v.check(fields.ip_address, ip_address)
        v.raise_any()
        origin = {"ip_address": ip_address, "user_agent": user_agent}
        keys = throttle.sign_in_keys(email, ip_address, self.throttle)
        with self.db.transaction() as db:
            found = users.find_by_email(db, email)
            uid = found.id if found else None
            attempt = self._begin(db, keys, AuditEvent.SIGN_IN_THROTTLED, user_id=uid, **origin)
        # With no user, a dummy hash is checked, so an unknown email costs the same.
        verified = self._verify(attempt, found.password_hash if found else None, password)
        if found is None or not verified:
            self._record(AuditEvent.SIGN_IN_FAILED, user_id=uid, **origin)
            security_event("sign_in_failed", uid)
            raise InvalidCredentials()
        rehash = (
            self.hasher.hash(password) if self.hasher.needs_rehash(found.password_hash) else None
        )
        signed_in = self._open(found, rehash, attempt, user_agent, ip_address)
        security_event("signed_in", found.id, session_id=str(signed_in.issued.session.id))
        return signed_in

    def _open(
        self,
        user: User,
        rehash: str | None,
        attempt: throttle.Attempt,
        user_agent: str,
        ip_address: str,
    ) -> SignIn:
        try:
            with self._changing() as (db, changed):
                if rehash:
                    users.set_password_hash(db, user.id, user.password_hash, rehash)
                issued = sessions.open_session(
                    db, user.id, self.policy, self.clock(), user_agent, ip_address
                )
                changed.session(*issued.ended)
                throttle.succeeded(db, attempt, self.clock())
                origin = {"ip_address": ip_address, "user_agent": user_agent}
                opened = {"user_id": user.id, "session_id": issued.session.id}
                self._audit(db, AuditEvent.SIGN_IN_SUCCEEDED, **opened, **origin)
        except IntegrityError:
            raise InvalidCredentials() from None  # the user was deleted meanwhile
        return SignIn(user, issued)

    def validate(self, session_token: str) -> Validated:
        """The user and session of a live token (the hot path: see authsvc.validation).

        Raises InvalidArgument, TokenInvalid or TokenExpired.
        """
        fields.required(session_token, "session_token")
        return self.validator.validate(session_token)

    def refresh(self, update_token: str) -> sessions.IssuedSession:
        """Rotates both tokens. Raises TokenInvalid, TokenExpired or RefreshTokenReused."""
        fields.required(update_token, "update_token")
        with self._changing() as (db, changed):
            try:
                issued = sessions.refresh(db, update_token, self.policy, self.clock())
            except RefreshTokenReused as exc:
                if exc.session_id:
                    changed.session(exc.session_id)  # revoked as stolen
                # Commits with the revocation (RefreshTokenReused.commit).
                stolen = {"user_id": exc.user_id, "session_id": exc.session_id}
                self._audit(db, AuditEvent.REFRESH_TOKEN_REUSED, **stolen)
                security_event("refresh_token_reused", exc.user_id)
                raise
            changed.session(issued.session.id)  # its old session token is gone
            refreshed = {"user_id": issued.session.user_id, "session_id": issued.session.id}
            self._audit(db, AuditEvent.SESSION_REFRESHED, **refreshed)
        return issued

    def sign_out(self, session_token: str) -> None:
        """Ends the session. Raises InvalidArgument or TokenInvalid."""
        fields.required(session_token, "session_token")
        with self._changing() as (db, changed):
            session = sessions.revoke(db, session_token)
            changed.session(session.id)
            ended = {"user_id": session.user_id, "session_id": session.id}
            self._audit(db, AuditEvent.SIGNED_OUT, **ended)

    def list_sessions(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[Session], str]:
        """One page of a user's live sessions. Raises InvalidArgument or UserNotFound."""
        uid = fields.uuid_id(user_id, "user_id")
        size = fields.page_size(page_size)
        with self.db.transaction(writes=False) as db:
            users.get_user(db, uid)
            return sessions.list_sessions(db, uid, self.clock(), size, page_token)

    # Audit trail and throttling

    def list_audit_events(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[AuditRecord], str]:
        """One page of audit events, newest first, optionally of one user.

        Raises InvalidArgument.
        """
        uid = fields.uuid_id(user_id, "user_id") if user_id else None
        size = fields.page_size(page_size)
        with self.db.transaction(writes=False) as db:
            return audit.list_events(db, size, page_token, uid)

    def audit_caller_denied(self, identities: tuple[str, ...], method: str) -> None:
        """Audits a call the caller policy refused (CALLER_DENIED).

        Never raises: the call is refused whether or not the event could be written.
        """
        detail = f"{', '.join(identities) or '(no identity)'} {method}"
        try:
            self._record(AuditEvent.CALLER_DENIED, detail=detail)
        except Exception:  # a denial stays a denial, even with the database down
            log.warning("could not audit a denied caller", exc_info=True)

    def _begin(
        self, db: DbSession, keys: list[throttle.Key], refused: AuditEvent, **who: Any
    ) -> throttle.Attempt:
        """Counts an attempt; when throttled, audits it (the error commits) and raises."""
        try:
            return throttle.begin(db, keys, self.clock(), self.throttle)
        except TooManyAttempts:
            self._audit(db, refused, **who)
            security_event(refused.name.lower(), who.get("user_id"))
            raise

    def _verify(self, attempt: throttle.Attempt, password_hash: str | None, password: str) -> bool:
        """Checks a password; an attempt that could not be checked is uncounted."""
        if len(password) > MAX_LENGTH:
            return False  # no password that long was ever accepted
        try:
            return self.hasher.verify(password_hash, password)
        except Exception:
            # Overload or a deadline is no wrong password: don't count it against anyone.
            self._release(attempt)
            raise

    def _release(self, attempt: throttle.Attempt) -> None:
        try:
            with self.db.transaction() as db:
                throttle.release(db, attempt)
        except Exception:  # the original error matters more; this one is logged
            log.warning("could not uncount an unchecked sign-in attempt", exc_info=True)

    def _audit(self, db: DbSession, event: AuditEvent, **who: Any) -> None:
        audit.record(db, event, time=self.clock(), **who)

    def _record(self, event: AuditEvent, **who: Any) -> None:
        """Audits an event that changes nothing else, in its own transaction."""
        with self.db.transaction() as db:
            self._audit(db, event, **who)

    # Housekeeping

    def purge(self) -> int:
        """Deletes expired sessions in batches (one transaction each), audit events past
        their retention and stale throttling state; returns how many sessions went.
        """
        return purge.purge_all(
            self.db, self.clock, self.purge_batch_size, self.audit_retention, self.throttle
        ).sessions


def _new_password(password: str) -> None:
    check_policy(fields.required(password, "new_password"), "new_password")
