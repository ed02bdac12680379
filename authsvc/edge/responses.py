"""Domain results → protobuf responses. The only place that knows both shapes.

ValidateToken's response is rendered once per validated entry: a cache hit returns the
same ``Validated`` object, so its rendered message is reused (gRPC only reads it to
serialize) instead of building seven fields and five timestamps again. The renderings
are held weakly, so they go when the validation cache drops the entry.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import UTC, datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from authsvc.edge import paging
from authsvc.errors import AuthError, EmailTaken, InvalidArgument
from authsvc.flows.email_verification import StartedVerification
from authsvc.flows.event_feed import EventPage
from authsvc.flows.factor_enrolment import TotpEnrollment
from authsvc.flows.heartbeats import Heartbeat
from authsvc.flows.importing import Outcome
from authsvc.flows.password_reset import StartedReset
from authsvc.flows.sign_in import SignedIn
from authsvc.flows.webhooks import DeliveryPage, DeliveryView, WebhookView
from authsvc.rules import cursors
from authsvc.rules.authentication import assurance_level
from authsvc.rules.challenges import IssuedChallenge
from authsvc.rules.events import HEARTBEAT
from authsvc.rules.sessions import IssuedSession
from authsvc.storage.paging import Page
from authsvc.storage.read_model import SessionView, UserView, Validated
from authsvc.storage.revocation_feed import Entry
from authsvc.storage.views import AuditEventView, EventView, PasskeyView
from authsvc_client.v1 import auth_service_pb2 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime.

    Integer arithmetic on the difference from the epoch: exact, and several times
    cheaper than ``Timestamp.FromDatetime`` (a time tuple and ``calendar.timegm``), which
    matters on ValidateToken's uncached path (five timestamps per call).
    """
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def user(u: UserView) -> pb.User:
    """The public view of a user: its profile as it is, never anything about its password."""
    return pb.User(
        id=str(u.id),
        **u.profile,
        create_time=timestamp(u.created_at),
        update_time=timestamp(u.updated_at),
        email_verified=u.email_verified_at is not None,
        email_verify_time=timestamp(u.email_verified_at) if u.email_verified_at else None,
        state=pb.USER_STATE_DISABLED if u.disabled_at else pb.USER_STATE_ACTIVE,
    )


def session(s: SessionView) -> pb.Session:
    """The public view of a session: never a token or its hash."""
    return pb.Session(
        id=str(s.id),
        user_id=str(s.user_id),
        create_time=timestamp(s.created_at),
        expire_time=timestamp(s.expires_at),
        refresh_expire_time=timestamp(s.refresh_expires_at),
        user_agent=s.user_agent,
        ip_address=s.ip_address,
        authentication_methods=[
            pb.AuthenticationMethod(
                method=f"AUTHENTICATION_METHOD_TYPE_{a.method}",
                time=timestamp(a.time),
            )
            for a in s.authentication_methods
        ],
        assurance_level=f"ASSURANCE_LEVEL_AAL{assurance_level(s.authentication_methods)}",
    )


_rendered: weakref.WeakKeyDictionary[Validated, pb.ValidateTokenResponse] = (
    weakref.WeakKeyDictionary()
)


def validation(v: Validated) -> pb.ValidateTokenResponse:
    """ValidateToken's response, rendered once per validated entry."""
    found = _rendered.get(v)
    if found is None:
        found = pb.ValidateTokenResponse(user=user(v.user), session=session(v.session))
        _rendered[v] = found
    return found


def signed_in(done: SignedIn) -> pb.CreateSessionResponse:
    """CreateSession's response: the tokens (returned this once), or a challenge."""
    if done.challenge is not None:
        return pb.CreateSessionResponse(
            user=user(done.user),
            challenge=challenge(done.challenge, [f"SECOND_FACTOR_{f}" for f in done.factors]),
        )
    assert done.issued is not None
    return pb.CreateSessionResponse(
        session=session(done.issued.session),
        session_token=done.issued.session_token,
        update_token=done.issued.update_token,
        user=user(done.user),
        second_factor_enrollment_required=done.enrollment_required,
        **access_token(done.issued),
    )


def access_token(issued: IssuedSession) -> dict[str, Any]:
    """The access token fields of a sign-in or refresh response (none when off)."""
    if issued.access is None:
        return {}
    return {
        "access_token": issued.access.token,
        "access_token_expire_time": timestamp(issued.access.expires_at),
    }


def revocation(item: Entry | Heartbeat) -> pb.Revocation:
    """One message of WatchRevocations: an entry, or a heartbeat (a cursor alone)."""
    if isinstance(item, Heartbeat):
        return pb.Revocation(cursor=cursors.REVOCATIONS.encode(item.position))
    message = pb.Revocation(
        cursor=cursors.REVOCATIONS.encode(item.position),
        not_before=timestamp(item.not_before),
        expire_time=timestamp(item.expires_at),
    )
    if item.session_id is not None:
        message.session_id = item.session_id
    else:
        assert item.user_id is not None
        message.user_id = item.user_id
    return message


def challenge(issued: IssuedChallenge, factors: list[str]) -> pb.SignInChallenge:
    """A sign-in challenge: its token (returned this once), factors and expiry."""
    return pb.SignInChallenge(
        challenge_token=issued.token,
        factors=factors,
        expire_time=timestamp(issued.expires_at),
    )


def completed(done: SignedIn) -> pb.CompleteSignInResponse:
    """CompleteSignIn's response: the tokens, returned this once."""
    assert done.issued is not None
    return pb.CompleteSignInResponse(
        session=session(done.issued.session),
        session_token=done.issued.session_token,
        update_token=done.issued.update_token,
        user=user(done.user),
        **access_token(done.issued),
    )


def totp_enrollment(e: TotpEnrollment) -> pb.StartTotpEnrollmentResponse:
    """StartTotpEnrollment's response: the secret, shown this once."""
    return pb.StartTotpEnrollmentResponse(
        secret=e.secret, otpauth_uri=e.otpauth_uri, expire_time=timestamp(e.expire_time)
    )


def refreshed(issued: IssuedSession) -> pb.RefreshSessionResponse:
    """RefreshSession's response: the new tokens."""
    return pb.RefreshSessionResponse(
        session=session(issued.session),
        session_token=issued.session_token,
        update_token=issued.update_token,
        **access_token(issued),
    )


def started_reset(started: StartedReset) -> pb.StartPasswordResetResponse:
    """StartPasswordReset's response: the token (maybe empty), returned this once."""
    return pb.StartPasswordResetResponse(
        reset_token=started.reset_token, expire_time=timestamp(started.expires_at)
    )


def started_verification(started: StartedVerification) -> pb.StartEmailVerificationResponse:
    """StartEmailVerification's response: the token, returned this once."""
    return pb.StartEmailVerificationResponse(
        verification_token=started.verification_token, expire_time=timestamp(started.expires_at)
    )


def users(page: Page[UserView]) -> pb.ListUsersResponse:
    token = paging.encode(page.next, paging.users_scope())
    return pb.ListUsersResponse(users=[user(u) for u in page.items], next_page_token=token)


def sessions(user_id: uuid.UUID, page: Page[SessionView]) -> pb.ListSessionsResponse:
    token = paging.encode(page.next, paging.sessions_scope(user_id))
    return pb.ListSessionsResponse(sessions=[session(s) for s in page.items], next_page_token=token)


def audit_events(
    user_id: uuid.UUID | None, page: Page[AuditEventView]
) -> pb.ListAuditEventsResponse:
    token = paging.encode(page.next, paging.audit_scope(user_id))
    return pb.ListAuditEventsResponse(
        audit_events=[audit_event(e) for e in page.items], next_page_token=token
    )


def audit_event(e: AuditEventView) -> pb.AuditEvent:
    """The public view of an audit event (which never holds a secret)."""
    return pb.AuditEvent(
        id=str(e.id),
        event_time=timestamp(e.created_at),
        type=f"AUDIT_EVENT_TYPE_{e.event}",
        user_id=str(e.user_id) if e.user_id else "",
        session_id=str(e.session_id) if e.session_id else "",
        ip_address=e.ip_address,
        user_agent=e.user_agent,
        detail=e.detail,
    )


def imported(outcomes: list[Outcome]) -> pb.ImportUsersResponse:
    """ImportUsers' response: one result per user, in the request's order."""
    return pb.ImportUsersResponse(
        results=[
            pb.ImportUserResult(user_id=str(o))
            if isinstance(o, uuid.UUID)
            else pb.ImportUserResult(error=import_error(f"users[{i}]", o))
            for i, o in enumerate(outcomes)
        ]
    )


def import_error(at: str, error: AuthError) -> pb.ImportUserError:
    """Why the user at ``at`` was not imported, with its bad fields' paths."""
    violations = []
    if isinstance(error, InvalidArgument):
        violations = [(v.field, v.description) for v in error.violations]
    elif isinstance(error, EmailTaken):
        violations = [(f"{at}.email", "is already registered")]
    return pb.ImportUserError(
        reason=f"ERROR_REASON_{error.reason}",
        message=error.message,
        field_violations=[
            pb.ImportFieldViolation(field=field, description=description)
            for field, description in violations
        ],
    )


def passkey(p: PasskeyView) -> pb.Passkey:
    """The public view of a passkey: never its key or credential id."""
    return pb.Passkey(
        id=str(p.id),
        name=p.name,
        create_time=timestamp(p.created_at),
        last_use_time=timestamp(p.last_used_at) if p.last_used_at else None,
    )


def passkey_signed_in(done: SignedIn) -> pb.FinishPasskeySignInResponse:
    """FinishPasskeySignIn's response: the tokens, returned this once."""
    assert done.issued is not None
    return pb.FinishPasskeySignInResponse(
        session=session(done.issued.session),
        session_token=done.issued.session_token,
        update_token=done.issued.update_token,
        user=user(done.user),
        **access_token(done.issued),
    )


def event(item: EventView | Heartbeat) -> pb.Event:
    """An account event as the API shows it, or a heartbeat (only a cursor and a time)."""
    if isinstance(item, Heartbeat):
        return pb.Event(
            cursor=cursors.EVENTS.encode(item.position), type=HEARTBEAT, time=timestamp(item.time)
        )
    data = Struct()
    data.update(item.data)
    return pb.Event(
        id=str(item.id),
        cursor=cursors.EVENTS.encode(item.position),
        type=item.type,
        time=timestamp(item.time),
        user_id=str(item.user_id) if item.user_id else "",
        session_id=str(item.session_id) if item.session_id else "",
        actor=pb.Actor(kind=f"ACTOR_KIND_{item.actor_kind}", name=item.actor_name),
        data=data,
    )


def events(found: EventPage, after_cursor: str) -> pb.ListEventsResponse:
    """A page of ListEvents; ``after_cursor`` is the request's (kept when nothing came)."""
    if found.next_position is None:
        next_cursor = after_cursor
    else:
        next_cursor = cursors.EVENTS.encode(found.next_position)
    return pb.ListEventsResponse(events=[event(e) for e in found.events], next_cursor=next_cursor)


# Webhooks (issue 19)

_WEBHOOK_STATES = {"ACTIVE": pb.WEBHOOK_STATE_ACTIVE, "FAILING": pb.WEBHOOK_STATE_FAILING}
_DELIVERY_STATES = {
    "PENDING": pb.WEBHOOK_DELIVERY_STATE_PENDING,
    "DELIVERED": pb.WEBHOOK_DELIVERY_STATE_DELIVERED,
    "FAILED": pb.WEBHOOK_DELIVERY_STATE_FAILED,
}


def webhook(w: WebhookView) -> pb.Webhook:
    """The public view of an endpoint: never its secret."""
    return pb.Webhook(
        id=str(w.id),
        url=w.url,
        types=list(w.types),
        create_time=timestamp(w.created_at),
        state=_WEBHOOK_STATES[w.state],
    )


def webhook_deliveries(
    webhook_id: uuid.UUID, page: DeliveryPage
) -> pb.ListWebhookDeliveriesResponse:
    token = paging.encode_position(page.next_before, paging.deliveries_scope(webhook_id))
    return pb.ListWebhookDeliveriesResponse(
        deliveries=[webhook_delivery(d) for d in page.items], next_page_token=token
    )


def webhook_delivery(d: DeliveryView) -> pb.WebhookDelivery:
    """One delivery: its event, state and how its last attempt went."""
    return pb.WebhookDelivery(
        event_id=str(d.event_id),
        event_type=d.event_type,
        state=_DELIVERY_STATES[d.state],
        attempts=d.attempts,
        last_attempt_time=timestamp(d.last_attempt_at) if d.last_attempt_at else None,
        next_attempt_time=timestamp(d.next_attempt_at) if d.next_attempt_at else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
    )
