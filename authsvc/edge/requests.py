"""Requests → typed commands: every field checked here, each violation named by its path.

A parser runs the value checks of ``rules.values`` (and the password policy) on the
fields of one request, collects every violation with its proto path (``user.email``),
and raises one InvalidArgument naming them all; otherwise it returns the frozen command
the flow takes. Flows never see a raw field or a field path. A request's ``ip_address``
becomes the end user's address only as ``edge.end_user`` allows (``where``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from google.protobuf.timestamp_pb2 import Timestamp

from authsvc.edge import paging
from authsvc.edge.end_user import EndUser
from authsvc.errors import FieldViolation, InvalidArgument, UnsupportedHashFormat
from authsvc.flows.accounts import NewUser
from authsvc.flows.changes import Origin
from authsvc.flows.credentials import PasswordChange
from authsvc.flows.email_verification import VerificationRequest
from authsvc.flows.event_feed import EventQuery
from authsvc.flows.mailed_tokens import Presented
from authsvc.flows.password_reset import NewPassword, ResetRequest
from authsvc.flows.second_factor import Code
from authsvc.flows.sign_in import PasswordSignIn, SecondStep
from authsvc.flows.step_up import Reauthentication
from authsvc.flows.webhooks import NewWebhook
from authsvc.rules import events as event_rules
from authsvc.rules import imported_hashes, passwords, values, webhook_urls, webhooks
from authsvc.rules.authentication import AuthMethod
from authsvc.rules.users import IMPORT_BATCH_MAX, ImportedUser, Profile, ProfileChanges
from authsvc.rules.values import Email, Rejected
from authsvc.storage.paging import PageRequest
from authsvc_client.v1 import auth_service_pb2 as pb

T = TypeVar("T")

UPDATABLE = ("first_name", "last_name", "email", "locale")


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
    email = f.take("email", values.email, r.email)
    password = f.take("password", passwords.new_password, r.password)
    first_name = f.take("first_name", values.name, r.first_name)
    last_name = f.take("last_name", values.name, r.last_name)
    locale = f.take("locale", values.locale, r.locale)
    origin = _origin(f, r, where)
    f.done()
    return NewUser(Profile(email, first_name, last_name, locale), password, origin)


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


def update_user(r: pb.UpdateUserRequest) -> tuple[uuid.UUID, ProfileChanges]:
    """The user id and the changes named by the mask (AIP-134).

    An empty mask means every updatable field that is set; ``*`` means all of them.
    """
    user_id = one("user.id", values.uuid_id, r.user.id)
    mask = list(r.update_mask.paths)
    unknown = [p for p in mask if p not in (*UPDATABLE, "*")]
    if unknown:
        # Never echoed: a path is caller text (NUL, bidi overrides, 64 KiB of it).
        updatable = ", ".join(UPDATABLE)
        raise InvalidArgument.of(
            "update_mask", f"names a field that cannot be updated ({updatable})"
        )
    given = {
        "first_name": r.user.first_name,
        "last_name": r.user.last_name,
        "email": r.user.email,
        "locale": r.user.locale,
    }
    if "*" in mask:
        paths = list(UPDATABLE)
    else:
        paths = list(dict.fromkeys(mask)) or [p for p in UPDATABLE if given[p]]
    if not paths:
        raise InvalidArgument.of("update_mask", "names no field to update")
    f = _Fields()
    checks: dict[str, Callable[[str], Any]] = {
        "email": values.email,
        "first_name": values.name,
        "last_name": values.name,
        "locale": values.locale,
    }
    checked = {path: f.take(f"user.{path}", checks[path], given[path]) for path in paths}
    f.done()
    return user_id, ProfileChanges(
        email=checked.get("email"),
        first_name=checked.get("first_name"),
        last_name=checked.get("last_name"),
        locale=checked.get("locale"),
    )


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


def set_password(r: pb.SetPasswordRequest) -> tuple[uuid.UUID, str]:
    f = _Fields()
    user_id = f.take("user_id", values.uuid_id, r.user_id)
    new = f.take("new_password", passwords.new_password, r.new_password)
    f.done()
    return user_id, new


def list_users(r: pb.ListUsersRequest) -> PageRequest:
    f = _Fields()
    request = _page(f, r.page_size, r.page_token, paging.users_scope())
    f.done()
    return request


def list_sessions(r: pb.ListSessionsRequest) -> tuple[uuid.UUID, PageRequest]:
    f = _Fields()
    user_id = f.take("user_id", values.uuid_id, r.user_id)
    request = _page(f, r.page_size, r.page_token, paging.sessions_scope(user_id))
    f.done()
    return user_id, request


def list_audit_events(r: pb.ListAuditEventsRequest) -> tuple[uuid.UUID | None, PageRequest]:
    f = _Fields()
    user_id = f.take("user_id", values.optional_uuid_id, r.user_id)
    request = _page(f, r.page_size, r.page_token, paging.audit_scope(user_id))
    f.done()
    return user_id, request


def import_users(r: pb.ImportUsersRequest) -> list[ImportedUser | InvalidArgument]:
    """Each user checked on its own: a bad user becomes its error, in place.

    Only the batch itself can fail the call: empty, or over IMPORT_BATCH_MAX users.
    """
    if not r.users:
        raise InvalidArgument.of("users", "is required")
    if len(r.users) > IMPORT_BATCH_MAX:
        raise InvalidArgument.of("users", f"must hold at most {IMPORT_BATCH_MAX} users")
    return [_imported_user(f"users[{i}]", u) for i, u in enumerate(r.users)]


def _imported_user(at: str, u: pb.ImportedUser) -> ImportedUser | InvalidArgument:
    f, hashes = _Fields(), _Fields()
    email = f.take(f"{at}.email", values.email, u.email)
    first_name = f.take(f"{at}.first_name", values.name, u.first_name)
    last_name = f.take(f"{at}.last_name", values.name, u.last_name)
    locale = f.take(f"{at}.locale", values.locale, u.locale)
    # An empty hash is a missing field; a present one in no accepted format is its own
    # reason, since no edit of the data fixes it (the user needs a password reset).
    (hashes if u.password_hash else f).take(
        f"{at}.password_hash", imported_hashes.format_of, u.password_hash
    )
    created = u.create_time if u.HasField("create_time") else None
    create_time = f.take(f"{at}.create_time", _past_time, created)
    if hashes.violations:
        return UnsupportedHashFormat(hashes.violations + f.violations)
    if f.violations:
        return InvalidArgument(f.violations)
    profile = Profile(email, first_name, last_name, locale)
    return ImportedUser(profile, u.password_hash, u.email_verified, create_time)


def _past_time(value: Timestamp | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise Rejected("is not a valid time") from None
    if when.year < 1970:
        raise Rejected("must be in 1970 or later")
    return when


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


def confirm_totp(r: pb.ConfirmTotpEnrollmentRequest) -> tuple[str, str]:
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    code = f.take("code", values.totp_code, r.code)
    f.done()
    return token, code


def remove_totp(r: pb.RemoveTotpRequest) -> tuple[str, Code]:
    """A 6-digit code is a TOTP code; anything else is read as a recovery code."""
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    code = f.take("code", _second_factor_code, r.code)
    f.done()
    return token, code


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


def finish_passkey_registration(r: pb.FinishPasskeyRegistrationRequest) -> tuple[str, str, str]:
    f = _Fields()
    token = f.take("challenge_token", values.required, r.challenge_token)
    credential = f.take("credential_json", values.json_document, r.credential_json)
    name = f.take("name", values.passkey_name, r.name)
    f.done()
    return token, credential, name


def remove_passkey(r: pb.RemovePasskeyRequest) -> tuple[str, uuid.UUID]:
    f = _Fields()
    token = f.take("session_token", values.required, r.session_token)
    passkey_id = f.take("passkey_id", values.uuid_id, r.passkey_id)
    f.done()
    return token, passkey_id


def start_passkey_sign_in(r: pb.StartPasskeySignInRequest) -> Email | None:
    return one("email", values.email, r.email) if r.email else None


def finish_passkey_sign_in(
    r: pb.FinishPasskeySignInRequest, where: EndUser
) -> tuple[str, str, Origin]:
    f = _Fields()
    token = f.take("challenge_token", values.required, r.challenge_token)
    assertion = f.take("assertion_json", values.json_document, r.assertion_json)
    origin = _origin(f, r, where)
    f.done()
    return token, assertion, origin


def _second_factor_code(value: str) -> Code:
    # Six digits are a TOTP code; anything else can only be a recovery code.
    plain = value.replace(" ", "")
    if len(plain) == 6 and plain.isascii() and plain.isdigit():
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


def list_webhook_deliveries(
    r: pb.ListWebhookDeliveriesRequest,
) -> tuple[uuid.UUID, int, int | None]:
    """The endpoint, the page size and the event position the page starts before."""
    f = _Fields()
    webhook_id = f.take("webhook_id", values.uuid_id, r.webhook_id)
    size = f.take("page_size", values.page_size, r.page_size)
    scope = paging.deliveries_scope(webhook_id)
    before = f.take("page_token", paging.position_decoder(scope), r.page_token)
    f.done()
    return webhook_id, size, before
