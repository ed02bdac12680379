"""Requests → typed commands: every field checked here, each violation named by its path.

A parser runs the value checks of ``rules.values`` (and the password policy) on the
fields of one request, collects every violation with its proto path (``user.email``),
and raises one InvalidArgument naming them all; otherwise it returns the frozen command
the flow takes. Flows never see a raw field or a field path. A request's ``ip_address``
becomes the end user's address only as ``edge.end_user`` allows (``where``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, cast

from google.protobuf.timestamp_pb2 import Timestamp

from authsvc.edge import paging
from authsvc.edge.end_user import EndUser
from authsvc.errors import FieldViolation, InvalidArgument, UnsupportedHashFormat
from authsvc.flows.accounts import NewUser, ProfileUpdate
from authsvc.flows.audit_trail import AuditQuery
from authsvc.flows.changes import Origin
from authsvc.flows.code_check import Code
from authsvc.flows.email_verification import VerificationRequest
from authsvc.flows.event_feed import EventQuery
from authsvc.flows.factor_enrolment import TotpConfirmation, TotpRemoval
from authsvc.flows.passkeys import PasskeyRegistration, PasskeyRemoval, PasskeySignIn
from authsvc.flows.password_changes import AssignedPassword, PasswordChange
from authsvc.flows.password_reset import NewPassword, ResetRequest
from authsvc.flows.sessions import SessionQuery
from authsvc.flows.sign_in import PasswordSignIn, SecondStep
from authsvc.flows.step_up import Reauthentication
from authsvc.flows.token_check import Presented
from authsvc.flows.webhooks import DeliveryQuery, NewWebhook
from authsvc.rules import events as event_rules
from authsvc.rules import imported_hashes, passwords, values, webhook_urls, webhooks
from authsvc.rules.authentication import AuthMethod
from authsvc.rules.profile import PROFILE, UPDATABLE, Profile, ProfileChanges
from authsvc.rules.users import IMPORT_BATCH_MAX, ImportedUser
from authsvc.rules.values import Email, Rejected
from authsvc.storage.paging import PageRequest
from authsvc_client.v1 import auth_service_pb2 as pb

T = TypeVar("T")


class _Fields:
    """Collects the violations of one request."""

    def __init__(self) -> None:
        self._violations: list[FieldViolation] = []

    def take(self, path: str, check: Callable[[Any], T], value: Any) -> T:
        """``check(value)``; on Rejected remembers the violation and returns a placeholder."""
        try:
            return check(value)
        except Rejected as exc:
            self._violations.append(FieldViolation(path, str(exc)))
            return cast(T, None)

    @property
    def violations(self) -> list[FieldViolation]:
        """The violations collected so far."""
        return list(self._violations)

    def done(self) -> None:
        """Raises one InvalidArgument naming every violation, if any."""
        if self._violations:
            raise InvalidArgument(self._violations)


def one(path: str, check: Callable[[Any], T], value: Any) -> T:
    """A single checked field (raises InvalidArgument naming ``path``)."""
    fields = _Fields()
    result = fields.take(path, check, value)
    fields.done()
    return result


def create_user(r: pb.CreateUserRequest, where: EndUser) -> NewUser:
    f = _Fields()
    # The email, then the password, then the rest: violations in the request's order.
    email = f.take("email", values.email, r.email)
    password = f.take("password", passwords.new_password, r.password)
    profile = _profile(f, "", r, email=email)
    origin = _origin(f, r, where)
    f.done()
    return NewUser(Profile(profile), password, origin)


def _profile(f: _Fields, at: str, message: Any, **checked: str) -> dict[str, str]:
    """Every field of ``PROFILE`` in ``message``, checked (those in ``checked`` already
    were); a violation is named ``at`` + the field's name."""
    for field in PROFILE:
        if field.name not in checked:
            value = getattr(message, field.name)
            checked[field.name] = f.take(f"{at}{field.name}", field.check, value)
    return {field.name: checked[field.name] for field in PROFILE}


def _origin(
    f: _Fields,
    r: pb.CreateUserRequest
    | pb.CreateSessionRequest
    | pb.StartPasswordResetRequest
    | pb.CompletePasswordResetRequest
    | pb.VerifyEmailRequest
    | pb.FinishPasskeySignInRequest,
    where: EndUser,
) -> Origin:
    """The request's checked ``ip_address`` and ``user_agent``, read as ``where`` allows."""
    user_agent = f.take("user_agent", values.user_agent, r.user_agent)
    ip_address = f.take("ip_address", values.ip_address, r.ip_address)
    return where.origin(ip_address or "", user_agent)


def update_user(r: pb.UpdateUserRequest) -> ProfileUpdate:
    """The user id and the changes named by the mask (AIP-134).

    An empty mask means every updatable field that is set; ``*`` means all of them.
    """
    user_id = one("user.id", values.uuid_id, r.user.id)
    given = {name for name in UPDATABLE if getattr(r.user, name)}
    chosen = partial(values.update_mask, updatable=UPDATABLE, given=given)
    mask = one("update_mask", chosen, r.update_mask.paths)
    f = _Fields()
    checks = {field.name: field.check for field in PROFILE}
    changed = {path: f.take(f"user.{path}", checks[path], getattr(r.user, path)) for path in mask}
    f.done()
    return ProfileUpdate(user_id, ProfileChanges(changed))


def change_password(r: pb.ChangePasswordRequest) -> PasswordChange:
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    current = f.take("current_password", values.required, r.current_password)
    new = f.take("new_password", passwords.new_password, r.new_password)
    f.done()
    return PasswordChange(token, current, new)


def create_session(r: pb.CreateSessionRequest, where: EndUser) -> PasswordSignIn:
    f = _Fields()
    email = f.take("email", values.email, r.email)
    password = f.take("password", values.required, r.password)
    origin = _origin(f, r, where)
    f.done()
    return PasswordSignIn(email, password, origin)


def start_password_reset(r: pb.StartPasswordResetRequest, where: EndUser) -> ResetRequest:
    f = _Fields()
    email = f.take("email", values.email, r.email)
    origin = _origin(f, r, where)
    f.done()
    return ResetRequest(email, origin)


def complete_password_reset(r: pb.CompletePasswordResetRequest, where: EndUser) -> NewPassword:
    f = _Fields()
    token = f.take("reset_token", values.required, r.reset_token)
    new = f.take("new_password", passwords.new_password, r.new_password)
    origin = _origin(f, r, where)
    f.done()
    return NewPassword(Presented(token, origin), new)


def start_email_verification(r: pb.StartEmailVerificationRequest) -> VerificationRequest:
    """The user by id, by their own session token, or both (the flow checks they agree)."""
    if r.session_token:
        return VerificationRequest(
            one("user_id", values.optional_uuid_id, r.user_id), r.session_token
        )
    return VerificationRequest(one("user_id", values.uuid_id, r.user_id))


def verify_email(r: pb.VerifyEmailRequest, where: EndUser) -> Presented:
    f = _Fields()
    token = f.take("verification_token", values.required, r.verification_token)
    origin = _origin(f, r, where)
    f.done()
    return Presented(token, origin)


def set_password(r: pb.SetPasswordRequest) -> AssignedPassword:
    f = _Fields()
    user_id = f.take("user_id", values.uuid_id, r.user_id)
    new = f.take("new_password", passwords.new_password, r.new_password)
    f.done()
    return AssignedPassword(user_id, new)


def list_users(r: pb.ListUsersRequest) -> PageRequest:
    f = _Fields()
    request = _page(f, r.page_size, r.page_token, paging.users_scope())
    f.done()
    return request


def list_sessions(r: pb.ListSessionsRequest) -> SessionQuery:
    f = _Fields()
    user_id = f.take("user_id", values.uuid_id, r.user_id)
    request = _page(f, r.page_size, r.page_token, paging.sessions_scope(user_id))
    f.done()
    return SessionQuery(user_id, request)


def list_audit_events(r: pb.ListAuditEventsRequest) -> AuditQuery:
    f = _Fields()
    user_id = f.take("user_id", values.optional_uuid_id, r.user_id)
    request = _page(f, r.page_size, r.page_token, paging.audit_scope(user_id))
    f.done()
    return AuditQuery(user_id, request)


def import_users(r: pb.ImportUsersRequest) -> list[ImportedUser | InvalidArgument]:
    """Each user checked on its own: a bad user becomes its error, in place.

    Only the batch itself can fail the call: empty, or over IMPORT_BATCH_MAX users.
    """
    one("users", partial(values.users_batch, maximum=IMPORT_BATCH_MAX), len(r.users))
    return [_imported_user(f"users[{i}]", u) for i, u in enumerate(r.users)]


def _imported_user(at: str, u: pb.ImportedUser) -> ImportedUser | InvalidArgument:
    f, hashes = _Fields(), _Fields()
    profile = _profile(f, f"{at}.", u)
    # An empty hash is a missing field; a present one in no accepted format is its own
    # reason, since no edit of the data fixes it (the user needs a password reset).
    (hashes if u.password_hash else f).take(
        f"{at}.password_hash", imported_hashes.format_of, u.password_hash
    )
    created = u.create_time if u.HasField("create_time") else None
    create_time = f.take(f"{at}.create_time", _create_time, created)
    if hashes.violations:
        return UnsupportedHashFormat(hashes.violations + f.violations)
    if f.violations:
        return InvalidArgument(f.violations)
    return ImportedUser(Profile(profile), u.password_hash, u.email_verified, create_time)


def _create_time(value: Timestamp | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise Rejected("is not a valid time") from None
    return values.since_1970(when)


def _page(f: _Fields, size: int, token: str, scope: str) -> PageRequest:
    checked_size = f.take("page_size", values.page_size, size)
    after = f.take("page_token", paging.decoder(scope), token)
    return PageRequest(checked_size, after)


# Multi-factor sign-in (issue 10)


def session_token(
    r: pb.StartTotpEnrollmentRequest | pb.StartPasskeyRegistrationRequest | pb.ListPasskeysRequest,
) -> str:
    """The session token of a request that carries nothing else."""
    return one("session_token", values.required, r.session_token)


def confirm_totp(r: pb.ConfirmTotpEnrollmentRequest) -> TotpConfirmation:
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    code = f.take("code", values.totp_code, r.code)
    f.done()
    return TotpConfirmation(token, code)


def remove_totp(r: pb.RemoveTotpRequest) -> TotpRemoval:
    """A 6-digit code is a TOTP code; anything else is read as a recovery code."""
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    code = f.take("code", _second_factor_code, r.code)
    f.done()
    return TotpRemoval(token, code)


def complete_sign_in(r: pb.CompleteSignInRequest) -> SecondStep:
    f = _Fields()
    token = f.take("challenge_token", values.required, r.challenge_token)
    which = r.WhichOneof("factor")
    code = None
    if which == "totp_code":
        code = Code(AuthMethod.TOTP, f.take("totp_code", values.totp_code, r.totp_code))
    elif which == "recovery_code":
        value = f.take("recovery_code", values.recovery_code, r.recovery_code)
        code = Code(AuthMethod.RECOVERY_CODE, value)
    elif which == "passkey_assertion":
        a = r.passkey_assertion
        challenge = f.take("passkey_assertion.challenge_token", values.required, a.challenge_token)
        assertion = f.take(
            "passkey_assertion.assertion_json", values.json_document, a.assertion_json
        )
        f.done()
        return SecondStep(token, None, challenge, assertion)
    else:
        f.take("totp_code", values.required, "")
    f.done()
    return SecondStep(token, code)


def reauthenticate(r: pb.ReauthenticateSessionRequest) -> Reauthentication:
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    which = r.WhichOneof("proof")
    if which == "password":
        password = f.take("password", values.required, r.password)
        f.done()
        return Reauthentication(token, password=password)
    if which == "totp_code":
        code = f.take("totp_code", values.totp_code, r.totp_code)
        f.done()
        return Reauthentication(token, totp_code=code)
    if which == "recovery_code":
        code = f.take("recovery_code", values.recovery_code, r.recovery_code)
        f.done()
        return Reauthentication(token, recovery_code=code)
    if which == "passkey_assertion":
        a = r.passkey_assertion
        challenge = f.take("passkey_assertion.challenge_token", values.required, a.challenge_token)
        assertion = f.take(
            "passkey_assertion.assertion_json", values.json_document, a.assertion_json
        )
        f.done()
        return Reauthentication(token, passkey_challenge=challenge, passkey_assertion=assertion)
    f.take("password", values.required, "")
    f.done()
    raise AssertionError("unreachable: done() raised")


def finish_passkey_registration(r: pb.FinishPasskeyRegistrationRequest) -> PasskeyRegistration:
    f = _Fields()
    token = f.take("challenge_token", values.required, r.challenge_token)
    credential = f.take("credential_json", values.json_document, r.credential_json)
    name = f.take("name", values.passkey_name, r.name)
    f.done()
    return PasskeyRegistration(token, credential, name)


def remove_passkey(r: pb.RemovePasskeyRequest) -> PasskeyRemoval:
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    passkey_id = f.take("passkey_id", values.uuid_id, r.passkey_id)
    f.done()
    return PasskeyRemoval(token, passkey_id)


def start_passkey_sign_in(r: pb.StartPasskeySignInRequest) -> Email | None:
    return one("email", values.email, r.email) if r.email else None


def finish_passkey_sign_in(r: pb.FinishPasskeySignInRequest, where: EndUser) -> PasskeySignIn:
    f = _Fields()
    token = f.take("challenge_token", values.required, r.challenge_token)
    assertion = f.take("assertion_json", values.json_document, r.assertion_json)
    origin = _origin(f, r, where)
    f.done()
    return PasskeySignIn(token, assertion, origin)


def _second_factor_code(value: str) -> Code:
    if values.is_totp_shaped(value):
        return Code(AuthMethod.TOTP, values.totp_code(value))
    return Code(AuthMethod.RECOVERY_CODE, values.recovery_code(value))


def watch_events(r: pb.WatchEventsRequest) -> EventQuery:
    f = _Fields()
    query = EventQuery(_after_cursor(f, r.after_cursor), _types(f, r.types))
    f.done()
    return query


def list_events(r: pb.ListEventsRequest) -> EventQuery:
    f = _Fields()
    after = _after_cursor(f, r.after_cursor)
    size = f.take("page_size", values.event_page_size, r.page_size)
    query = EventQuery(after, _types(f, r.types), size)
    f.done()
    return query


def _after_cursor(f: _Fields, text: str) -> int | None:
    return f.take("after_cursor", event_rules.after_cursor, text)


def _types(f: _Fields, names: Sequence[str]) -> frozenset[str]:
    checked = f.take("types", event_rules.type_count, list(names))
    if checked is None:
        return frozenset()
    return frozenset(f.take(f"types[{i}]", event_rules.event_type, n) for i, n in enumerate(names))


# Webhooks (issue 19)


def create_webhook(r: pb.CreateWebhookRequest) -> NewWebhook:
    f = _Fields()
    f.take("url", webhook_urls.parse, r.url)
    types = f.take("types", webhooks.event_types, list(r.types))
    f.done()
    return NewWebhook(r.url, types)


def list_webhook_deliveries(r: pb.ListWebhookDeliveriesRequest) -> DeliveryQuery:
    """The endpoint, the page size and the event position the page starts before."""
    f = _Fields()
    webhook_id = f.take("webhook_id", values.uuid_id, r.webhook_id)
    size = f.take("page_size", values.page_size, r.page_size)
    scope = paging.deliveries_scope(webhook_id)
    before = f.take("page_token", paging.position_decoder(scope), r.page_token)
    f.done()
    return DeliveryQuery(webhook_id, size, before)
