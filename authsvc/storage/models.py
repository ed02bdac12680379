"""SQLAlchemy 2.0 typed models: users, their sessions, rotated-away update tokens,
single-use reset and verification tokens, sign-in throttling state, the audit trail, the
calling services' API keys, the account events outbox and webhook endpoints and deliveries.

Only SHA-256 digests of tokens are stored. Times are UTC-aware everywhere.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC-aware in Python.

    PostgreSQL stores ``timestamptz``; SQLite, which has no time zones, stores the UTC
    wall time, and the zone is put back on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Authentication:
    """One method proven on a session, at ``time`` (the latest time it was proven).

    ``method`` is the method's name as stored (``rules.authentication.AuthMethod``
    gives the names their meaning: storage only keeps them).
    """

    method: str
    time: datetime


class Authentications(TypeDecorator[tuple[Authentication, ...]]):
    """A session's authentications as compact JSON text: ``[["PASSWORD", 1764450000.0]]``.

    Text rather than a child table, so ValidateToken still reads one row.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(
        self, value: tuple[Authentication, ...] | None, dialect: Dialect
    ) -> str | None:
        if value is None:
            return None
        return json.dumps([[str(a.method), a.time.timestamp()] for a in value])

    def process_result_value(
        self, value: str | None, dialect: Dialect
    ) -> tuple[Authentication, ...] | None:
        if value is None:
            return None
        return tuple(
            Authentication(m, datetime.fromtimestamp(t, UTC)) for m, t in json.loads(value)
        )


class Base(DeclarativeBase):
    """Every table has a UUID ``id`` and ``created_at``/``updated_at``.

    The times have no default: whoever writes a row sets them from its change's clock
    (``Change.now``), so every timestamp comes from the one injected clock, never from
    the wall clock behind its back. A row inserted without them is refused (NOT NULL).
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    """A person who can sign in. ``email`` is stored trimmed and lower-cased."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(128))
    last_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    #: When the user proved the email address; None while unverified.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the user was disabled; None while active (the API's ``state``).
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The preferred language (a BCP 47 tag, "" for none): picks the mail templates.
    locale: Mapped[str] = mapped_column(String(35), default="")

    sessions: Mapped[list[Session]] = relationship(
        back_populates="user", passive_deletes=True, cascade="all, delete-orphan"
    )

    @property
    def is_disabled(self) -> bool:
        """True once DisableUser ran (and EnableUser did not since)."""
        return self.disabled_at is not None

    def __repr__(self) -> str:
        return f"User(id={self.id!s})"


class Session(Base):
    """A signed-in device. Holds the digests of its current session and update tokens.

    ``expires_at`` ends the session token, ``refresh_expires_at`` the update token, and
    ``absolute_expires_at`` (sign-in + max age) caps both, whatever the refreshes.
    """

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    update_token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    #: How the user authenticated on this session, one entry per method, oldest first.
    authentication_methods: Mapped[tuple[Authentication, ...]] = mapped_column(
        Authentications, default=()
    )

    user: Mapped[User] = relationship(back_populates="sessions")
    rotated_tokens: Mapped[list[RotatedToken]] = relationship(
        back_populates="session", passive_deletes=True, cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"Session(id={self.id!s}, user_id={self.user_id!s})"


class RotatedToken(Base):
    """The digest of an update token that a refresh replaced, kept to detect its reuse."""

    __tablename__ = "rotated_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)

    session: Mapped[Session] = relationship(back_populates="rotated_tokens")


class UserToken(Base):
    """A single-use token mailed to a user: a password reset or an email verification.

    ``kind`` says which (``reset`` or ``verification``); only the SHA-256 of the token
    is kept. Using the token deletes its row, so the delete's row count decides a race.
    """

    __tablename__ = "user_tokens"
    __table_args__ = (Index("ix_user_tokens_user_id_kind", "user_id", "kind"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ThrottleCounter(Base):
    """Sign-in throttling state of one key (an account's email or an end-user IP).

    ``key`` is the SHA-256 of the kind and the subject, so no email or address is kept
    here. The row is also the lock that serializes the attempts on its key.
    ``failures`` counts consecutive failures (accounts only; ``last_failure_at`` is
    when the latest began); ``blocked_until`` is the end of the current delay.
    ``updated_at`` is the latest attempt of any kind, for purging.
    """

    __tablename__ = "throttle_counters"
    __table_args__ = (Index("ix_throttle_counters_updated_at", "updated_at"),)

    key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ThrottleFailure(Base):
    """One failed (or still running) sign-in attempt on a key, at ``created_at``.

    Counting these rows gives the failures in any sliding window, for the hourly and
    per-IP caps.
    """

    __tablename__ = "throttle_failures"
    __table_args__ = (
        Index("ix_throttle_failures_key_created_at", "key", "created_at"),
        Index("ix_throttle_failures_created_at", "created_at"),
    )

    key: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditRecord(Base):
    """One security event, written in the transaction of the change it records.

    ``created_at`` is the time of the event. ``user_id`` and ``session_id`` are plain
    columns, not foreign keys: the trail outlives the users and sessions it names.
    Never holds a secret: no password, token or hash.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_id_created_at", "user_id", "created_at"),
        Index("ix_audit_events_created_at", "created_at"),
    )

    event: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    detail: Mapped[str] = mapped_column(String(256), default="")


class ApiKey(Base):
    """An API key a calling service presents as ``x-api-key``; ``name`` is its identity.

    Only the SHA-256 of the key is kept (``key_hash``, unique: the lookup). Several keys
    may share a name (rotation: create the new one, deploy it, revoke the old one).
    ``revoked_at`` ends a key for good; ``last_used_at`` is refreshed at most once a
    minute per replica, so it says "recently", not "exactly when".
    """

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(64), index=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!s}, name={self.name!r})"


# Multi-factor sign-in (issue 10)


class TotpFactor(Base):
    """A user's TOTP authenticator: pending until ``confirmed_at``, then active.

    ``secret`` is the base32 seed encrypted with ``AUTHSVC_SECRET_KEY`` (Fernet).
    ``last_used_step`` is the latest 30-second step a code was accepted for: a code is
    accepted only for a strictly later step (a conditional UPDATE), so no code works
    twice, on any replica. ``expires_at`` ends a pending enrolment.
    """

    __tablename__ = "totp_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    secret: Mapped[str] = mapped_column(String(512))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCode(Base):
    """One single-use recovery code: only a SHA-256 digest salted with the user's id.

    ``used_at`` is set (once: a conditional UPDATE) when it is spent.
    """

    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Challenge(Base):
    """A single-use ceremony: a second-factor sign-in, or a passkey registration or sign-in.

    Only the SHA-256 of its token is kept. ``kind`` names the ceremony; ``user_id`` is
    empty for a discoverable passkey sign-in; ``authenticated_at`` is when the password
    step of a sign-in succeeded; ``data`` holds the WebAuthn challenge (base64url) or
    nothing; ``user_agent``/``ip_address`` go to the session it opens.
    """

    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_expires_at", "expires_at"),)

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[str] = mapped_column(String(512), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    ip_address: Mapped[str] = mapped_column(String(45), default="")


class Passkey(Base):
    """A WebAuthn credential of a user: its id, public key (COSE) and sign counter."""

    __tablename__ = "passkeys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(128), default="")
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Account events (issue 19)

#: SQLite makes only ``INTEGER PRIMARY KEY`` the (never reused, with AUTOINCREMENT) rowid.
_POSITION = BigInteger().with_variant(Integer(), "sqlite")


class EventRow(Base):
    """One account event, appended in the transaction of the change it describes.

    ``position`` is the commit order: it is assigned while holding the events append lock
    (PostgreSQL ``pg_advisory_xact_lock``, SQLite's single writer), which is held until
    commit, so the positions become visible in increasing order and a reader paging
    ``position > last`` never skips a transaction that commits late. A sequence
    (SQLite: AUTOINCREMENT) never hands a position out twice, even after a purge.
    ``id`` is the event id consumers deduplicate on. ``data`` is the type's fields as
    JSON text: never a secret, never a hash. ``user_id`` and ``session_id`` are plain
    columns: the event outlives what it names.
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_time", "time"), {"sqlite_autoincrement": True})

    position: Mapped[int] = mapped_column(_POSITION, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_name: Mapped[str] = mapped_column(String(255), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")

    def __repr__(self) -> str:
        return f"EventRow(position={self.position}, type={self.type!r})"


# Webhooks (issue 19)


class Webhook(Base):
    """A webhook endpoint: events of ``types`` (a JSON list; empty: all) are POSTed to ``url``.

    ``secret`` is its Standard Webhooks signing secret, encrypted with
    ``AUTHSVC_SECRET_KEY`` (Fernet): the signer needs it back, so a hash would not do.
    ``event_position`` is how far the dispatcher has read the events table for it: every
    event after it has yet to become a delivery. ``state`` is ``ACTIVE`` or ``FAILING``
    (a delivery ran out of retries; the next success makes it ``ACTIVE`` again).
    """

    __tablename__ = "webhooks"

    url: Mapped[str] = mapped_column(String(2048))
    types: Mapped[str] = mapped_column(Text, default="[]")
    secret: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    event_position: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(Base):
    """One event on its way to one endpoint, and how its attempts went.

    ``payload`` is the JSON body as signed and sent, so a delivery outlives its event's
    retention. ``state``: ``PENDING`` (due at ``next_attempt_at``; while an attempt is in
    flight that is the attempt's lease, after which another sender may take it over),
    ``DELIVERED`` or ``FAILED`` (retries ran out; kept for inspection). One endpoint
    receives one user's events in ``event_position`` order.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_position", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "webhook_id", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )

    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_position: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(255), default="")


# Local verification of access tokens (issue 21)


class SigningKey(Base):
    """An Ed25519 key that signs access tokens (JWS ``EdDSA``), published in the JWKS.

    ``kid`` is the RFC 7638 thumbprint of the public key; ``public_key`` its 32 raw
    bytes; ``private_key`` the raw private key sealed with ``AUTHSVC_SECRET_KEY``
    (Fernet), never plaintext. The schedule is derived from the table by time alone
    (``rules.signing_keys``): a key is published from ``published_at`` and signs from
    ``signs_from`` until a later key's ``signs_from``; then it stays published one
    access-token TTL longer. Every replica derives the same active key.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key: Mapped[str] = mapped_column(String(512))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signs_from: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Revocation(Base):
    """One entry of the revocation feed: a session, or a user's tokens before a time.

    ``position`` is commit-ordered: it is assigned at the end of the revoking
    transaction while an append lock is held until commit (PostgreSQL
    ``pg_advisory_xact_lock``, SQLite's single writer), so a reader paging
    ``position > last`` never skips a late commit. Exactly one of ``session_id`` and
    ``user_id`` is set. ``expires_at``: no access token the entry concerns can still be
    unexpired after it (the purge deletes the row then).
    """

    __tablename__ = "revocations"

    position: Mapped[int] = mapped_column(BigInteger, unique=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# Mail authsvc sends itself (issue 20)


class MailRow(Base):
    """One mail of the outbox, queued in the transaction of the change that causes it.

    ``status`` is ``queued`` until the sender ``sent`` it or gave up (``failed``).
    A sender claims a queued mail by moving ``next_attempt_at`` past its lease (and
    counting the attempt) before it talks to the SMTP server, so a sender killed
    mid-send leaves the mail due again once the lease ends: at least once, never lost.
    ``data`` holds the template variables (JSON, never a secret); a mail with a link
    keeps its token only in ``sealed_token`` (Fernet, ``AUTHSVC_SECRET_KEY``), cleared
    once the mail is sent or failed. ``queued_at`` starts the retry window (``authsvc
    mail retry`` restarts it). ``message_id`` is the stable ``Message-ID`` of every
    attempt, so a duplicate delivery is recognisable.
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_mail_outbox_recipient_created_at", "recipient", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    locale: Mapped[str] = mapped_column(String(35), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")
    sealed_token: Mapped[str | None] = mapped_column(String(512))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(String(512), default="")
