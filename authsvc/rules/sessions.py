"""Rules for sessions: opening, rotation with reuse detection, revocation, listing.

Functions take a SQLAlchemy session and never commit; the calling flow owns the
transaction. ``now`` is always passed in, so tests can move the clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import (
    ReauthenticationRequired,
    SessionNotFound,
    TokenExpired,
    TokenInvalid,
)
from authsvc.rules.access_tokens import AccessToken, Subject
from authsvc.rules.authentication import SECOND_FACTORS, AuthMethod, proven
from authsvc.rules.tokens import TokenKind, is_well_formed, new_token, token_hash
from authsvc.storage.models import Authentication, RotatedToken, Session
from authsvc.storage.paging import Page, PageRequest, page
from authsvc.storage.read_model import SessionView


@dataclass(frozen=True)
class SessionPolicy:
    """Lifetimes and limits of sessions (from Settings)."""

    ttl: timedelta
    refresh_ttl: timedelta
    max_age: timedelta
    max_per_user: int = 0


@dataclass(frozen=True)
class IssuedSession:
    """A session with the raw tokens just issued for it (returned once, never stored)."""

    session: SessionView
    session_token: str
    update_token: str
    #: Sessions of the same user ended to respect the per-user limit (to invalidate).
    ended: tuple[uuid.UUID, ...] = ()
    #: The access token issued with it (None when access tokens are off).
    access: AccessToken | None = None


def subject(session: SessionView, email: str = "") -> Subject:
    """Whom an access token of ``session`` is for."""
    return Subject(
        session.user_id, session.id, session.expires_at, session.authentication_methods, email
    )


def open_session(
    db: DbSession,
    user_id: uuid.UUID,
    policy: SessionPolicy,
    now: datetime,
    user_agent: str = "",
    ip_address: str = "",
    methods: tuple[Authentication, ...] = (),
) -> IssuedSession:
    """Starts a session for ``user_id`` and ends the oldest ones beyond the per-user limit.

    ``methods`` are how the user authenticated (the password at ``now`` when omitted).
    The ended sessions are reported in ``IssuedSession.ended``.
    """
    session_token, update_token = new_token(TokenKind.SESSION), new_token(TokenKind.UPDATE)
    absolute = now + policy.max_age
    session = Session(
        user_id=user_id,
        token_hash=token_hash(session_token),
        update_token_hash=token_hash(update_token),
        expires_at=min(now + policy.ttl, absolute),
        refresh_expires_at=min(now + policy.refresh_ttl, absolute),
        absolute_expires_at=absolute,
        user_agent=user_agent,
        ip_address=ip_address,
        authentication_methods=methods or (proven(AuthMethod.PASSWORD, now),),
        created_at=now,
        updated_at=now,
    )
    db.add(session)
    db.flush()
    ended: tuple[uuid.UUID, ...] = ()
    if policy.max_per_user:
        ended = _enforce_limit(db, user_id, policy.max_per_user, now)
    return IssuedSession(SessionView.of(session), session_token, update_token, ended)


def _enforce_limit(
    db: DbSession, user_id: uuid.UUID, limit: int, now: datetime
) -> tuple[uuid.UUID, ...]:
    live = (
        select(Session.id)
        .where(Session.user_id == user_id, Session.refresh_expires_at > now)
        .order_by(Session.created_at.desc(), Session.id.desc())
        .offset(limit)
    )
    stale = list(db.scalars(live))
    dead = Session.user_id == user_id
    ended = tuple(
        db.scalars(
            select(Session.id).where(
                dead, (Session.id.in_(stale)) | (Session.refresh_expires_at <= now)
            )
        )
    )
    db.execute(
        delete(Session).where(Session.id.in_(ended)).execution_options(synchronize_session=False)
    )
    return ended


@dataclass(frozen=True)
class Reused:
    """A rotated-away update token came back: its session was revoked (likely theft)."""

    user_id: uuid.UUID
    session_id: uuid.UUID


def refresh(
    db: DbSession, update_token: str, policy: SessionPolicy, now: datetime
) -> IssuedSession | Reused:
    """Rotates both tokens of the session owning ``update_token``.

    When the token was already rotated away (including by a concurrent refresh), revokes
    its session and returns Reused: the flow keeps that revocation, then fails the call.
    Raises TokenInvalid or TokenExpired.
    """
    if not is_well_formed(update_token, TokenKind.UPDATE):
        raise TokenInvalid()
    old_hash = token_hash(update_token)
    session = db.scalar(select(Session).where(Session.update_token_hash == old_hash))
    if session is None:
        reused = _revoke_if_rotated(db, old_hash)
        if reused is None:
            raise TokenInvalid()
        return reused
    if now >= session.refresh_expires_at:
        raise TokenExpired()
    tokens = _rotate(db, session, old_hash, policy, now)
    if tokens is None:
        # A concurrent refresh rotated this token first: ours is now a reused token.
        _revoke(db, session.id)
        return Reused(session.user_id, session.id)
    db.add(RotatedToken(session_id=session.id, token_hash=old_hash, created_at=now, updated_at=now))
    db.flush()
    db.refresh(session)
    return IssuedSession(SessionView.of(session), *tokens)


def _rotate(
    db: DbSession, session: Session, old_hash: bytes, policy: SessionPolicy, now: datetime
) -> tuple[str, str] | None:
    """New session and update tokens for ``session`` if its update token is still
    ``old_hash``, else None."""
    session_token, update_token = new_token(TokenKind.SESSION), new_token(TokenKind.UPDATE)
    rotated = db.execute(
        update(Session)
        .where(Session.id == session.id, Session.update_token_hash == old_hash)
        .values(
            token_hash=token_hash(session_token),
            update_token_hash=token_hash(update_token),
            expires_at=min(now + policy.ttl, session.absolute_expires_at),
            refresh_expires_at=min(now + policy.refresh_ttl, session.absolute_expires_at),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if rotated.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session_token, update_token


def _revoke_if_rotated(db: DbSession, digest: bytes) -> Reused | None:
    row = db.execute(
        select(Session.id, Session.user_id)
        .join(RotatedToken, RotatedToken.session_id == Session.id)
        .where(RotatedToken.token_hash == digest)
    ).one_or_none()
    if row is None:
        return None
    _revoke(db, row.id)
    return Reused(row.user_id, row.id)


def _revoke(db: DbSession, session_id: uuid.UUID) -> None:
    db.execute(
        delete(Session).where(Session.id == session_id).execution_options(synchronize_session=False)
    )


def revoke(db: DbSession, session_token: str) -> Session:
    """Ends the session of ``session_token`` (expired or not); raises TokenInvalid."""
    if not is_well_formed(session_token, TokenKind.SESSION):
        raise TokenInvalid()
    session = db.scalar(select(Session).where(Session.token_hash == token_hash(session_token)))
    if session is None:
        raise TokenInvalid()
    _revoke(db, session.id)
    return session


def revoke_others(db: DbSession, user_id: uuid.UUID, keep: uuid.UUID) -> list[uuid.UUID]:
    """Ends every session of ``user_id`` but ``keep``; returns the ended ids."""
    ended = list(
        db.scalars(select(Session.id).where(Session.user_id == user_id, Session.id != keep))
    )
    db.execute(
        delete(Session).where(Session.id.in_(ended)).execution_options(synchronize_session=False)
    )
    return ended


def revoke_by_id(db: DbSession, session_id: uuid.UUID) -> Session:
    """Ends the session with ``session_id`` (expired or not); raises SessionNotFound."""
    session = db.get(Session, session_id)
    if session is None:
        raise SessionNotFound()
    _revoke(db, session.id)
    return session


def revoke_all(db: DbSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Ends every session of ``user_id``; returns the ended ids."""
    ended = list(db.scalars(select(Session.id).where(Session.user_id == user_id)))
    db.execute(
        delete(Session).where(Session.id.in_(ended)).execution_options(synchronize_session=False)
    )
    return ended


def list_sessions(
    db: DbSession, user_id: uuid.UUID, now: datetime, request: PageRequest
) -> Page[SessionView]:
    """One page of the live sessions of ``user_id``, oldest first."""
    live = select(Session).where(Session.user_id == user_id, Session.refresh_expires_at > now)
    return page(db, live, Session, request).map(SessionView.of)


def with_method(
    methods: tuple[Authentication, ...], method: AuthMethod, now: datetime
) -> tuple[Authentication, ...]:
    """``methods`` with ``method`` proven at ``now``: one entry per method, oldest first."""
    kept = [a for a in methods if a.method != method]
    return (*kept, proven(method, now))


def record_authentication(
    db: DbSession, session_id: uuid.UUID, method: AuthMethod, now: datetime
) -> SessionView:
    """Records that ``method`` was just proven on the session (step-up); returns it.

    The row is locked first, so concurrent step-ups of one session both land.
    Raises TokenInvalid when the session is gone.
    """
    session = db.scalar(
        select(Session)
        .where(Session.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if session is None:
        raise TokenInvalid()
    session.authentication_methods = with_method(session.authentication_methods, method, now)
    session.updated_at = now
    db.flush()
    return SessionView.of(session)


#: What a user with a second factor is told when only a password is recent.
SECOND_FACTOR_NEEDED = (
    "this account has a second factor: prove one again (ReauthenticateSession with a "
    "totp_code, recovery_code or passkey_assertion) before this call; a password is not enough"
)


def require_recent_authentication(
    view: SessionView, now: datetime, max_age: timedelta, *, second_factor: bool = False
) -> None:
    """Raises ReauthenticationRequired unless the session proved a method within
    ``max_age``: with ``second_factor`` (the user has one), a second factor (TOTP,
    recovery code or passkey), since a password alone must not change what protects
    an account that has more than a password."""
    if second_factor:
        times = [a.time for a in view.authentication_methods if a.method in SECOND_FACTORS]
        last = max(times, default=None)
        if last is None or now - last > max_age:
            raise ReauthenticationRequired(SECOND_FACTOR_NEEDED)
        return
    last = view.authenticated_since()
    if last is None or now - last > max_age:
        raise ReauthenticationRequired()
