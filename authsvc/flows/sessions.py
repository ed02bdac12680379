"""Sessions: validation (the hot path), refresh with reuse detection, sign-out, listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from authsvc.errors import RefreshTokenReused, TokenInvalid
from authsvc.flows.access_tokens import AccessTokens
from authsvc.flows.changes import Change, Changes, Who
from authsvc.rules import access_tokens, revocations, sessions, users
from authsvc.rules.access_tokens import AccessToken
from authsvc.rules.audit import AuditEvent
from authsvc.rules.events import SYSTEM, Actor
from authsvc.rules.sessions import IssuedSession, Reused, SessionPolicy
from authsvc.rules.validation import TokenValidator
from authsvc.storage.paging import Page, PageRequest
from authsvc.storage.read_model import SessionView, Validated


@dataclass(frozen=True)
class SessionQuery:
    """A checked ListSessions request: whose sessions, which page."""

    user_id: uuid.UUID
    page: PageRequest


class Sessions:
    """ValidateToken, RefreshSession, DeleteSession, ListSessions, RevokeSession,
    RevokeUserSessions."""

    def __init__(
        self,
        changes: Changes,
        validator: TokenValidator,
        policy: SessionPolicy,
        tokens: AccessTokens,
    ) -> None:
        self._changes = changes
        self._validator = validator
        self._policy = policy
        self._tokens = tokens

    def validate(self, session_token: str) -> Validated:
        """The user and session of a live session token, or of a valid access token.

        An access token's signature, issuer and expiry are checked, then the session
        it names exactly as a session token's (so a revoked session is refused), and
        the revocations of its user (a new password refuses tokens issued before).
        Raises TokenInvalid or TokenExpired.
        """
        if not access_tokens.looks_like_access_token(session_token):
            return self._validator.validate(session_token)
        claims = self._tokens.verify(session_token)
        with self._changes.read() as db:
            found = self._validator.validate_session_in(db, claims.session_id)
            now = self._changes.clock()
            if found.user.id != claims.user_id or revocations.user_revoked_after(
                db, claims.user_id, claims.issued_at, now
            ):
                raise TokenInvalid()
        return found

    def refresh(self, update_token: str) -> IssuedSession:
        """Rotates both tokens. Raises TokenInvalid, TokenExpired or RefreshTokenReused.

        A reused token's session is revoked, and that revocation is kept: it commits
        before the call fails.
        """
        with self._changes.open() as change:
            outcome = sessions.refresh(change.db, update_token, self._policy, change.now)
            if isinstance(outcome, Reused):
                stolen = Who(outcome.user_id, outcome.session_id)
                change.audit(AuditEvent.REFRESH_TOKEN_REUSED, stolen)
                # authsvc itself revokes it, whoever presented the token.
                change.event("session.reuse_detected", stolen, SYSTEM)
                change.revoked(outcome.user_id, [outcome.session_id], "reuse_detected", SYSTEM)
            else:
                change.ended(outcome.session.id)  # its old session token is gone
                who = Who(outcome.session.user_id, outcome.session.id)
                change.audit(AuditEvent.SESSION_REFRESHED, who)
                outcome = replace(outcome, access=self._access_token(change, outcome))
        if isinstance(outcome, Reused):
            raise RefreshTokenReused()
        return outcome

    def _access_token(self, change: Change, issued: IssuedSession) -> AccessToken | None:
        def email() -> str:
            return users.get_user(change.db, issued.session.user_id).email

        return self._tokens.issue_for(issued.session, email, change.now)

    def sign_out(self, session_token: str) -> None:
        """Ends the session (expired or not). Raises TokenInvalid."""
        with self._changes.open() as change:
            session = sessions.revoke(change.db, session_token)
            change.revoked(session.user_id, [session.id], "sign_out", Actor.user(session.user_id))
            change.audit(AuditEvent.SIGNED_OUT, Who(session.user_id, session.id))

    def revoke_session(self, session_id: uuid.UUID) -> None:
        """Ends one session by id, on every replica. Raises SessionNotFound."""
        with self._changes.open() as change:
            session = sessions.revoke_by_id(change.db, session_id)
            change.revoked(session.user_id, [session.id], "revoked")
            change.audit(AuditEvent.SESSION_REVOKED, Who(session.user_id, session.id))

    def revoke_user_sessions(self, user_id: uuid.UUID) -> int:
        """Ends every session of the user ("sign out everywhere"); returns how many.

        Raises UserNotFound.
        """
        with self._changes.open() as change:
            users.get_user(change.db, user_id)
            ended = sessions.revoke_all(change.db, user_id)
            change.revoked_all(user_id, ended, "revoked")
            change.audit(AuditEvent.USER_SESSIONS_REVOKED, Who(user_id), f"{len(ended)} ended")
        return len(ended)

    def list_sessions(self, query: SessionQuery) -> Page[SessionView]:
        """One page of a user's live sessions. Raises UserNotFound."""
        with self._changes.read() as db:
            users.get_user(db, query.user_id)
            return sessions.list_sessions(db, query.user_id, self._changes.clock(), query.page)
