"""Passkeys (WebAuthn, via py_webauthn): ceremonies' options, verification, storage.

Only user-verified passkeys are accepted (registration and assertion both require
UV), so a passkey sign-in is a full, AAL2 sign-in on its own. Attestation is "none":
authsvc trusts the credential's key, not its make. A sign counter that does not
grow (when either side counts) means a copy of the authenticator exists: the
counter's conditional UPDATE refuses it, and the flow audits it.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import webauthn
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session as DbSession
from webauthn.helpers import parse_authentication_credential_json, parse_authenticator_data
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authsvc.errors import MfaNotConfigured, PasskeyInvalid, PasskeyNotFound
from authsvc.setting_names import AUTHSVC_WEBAUTHN_RP_ID
from authsvc.storage.models import Passkey

_REQUIRED = UserVerificationRequirement.REQUIRED
# What py_webauthn raises on a refused or malformed response (JSON of any shape comes
# from the end user's browser, so a shape it did not foresee must still be a refusal).
_MALFORMED = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError, IndexError)


@dataclass(frozen=True)
class RelyingParty:
    """Who passkeys are for: the RP id (a domain), its name and the allowed origins."""

    id: str
    name: str
    origins: tuple[str, ...] = ()

    def require(self) -> RelyingParty:
        """Itself; raises MfaNotConfigured when no RP id is set."""
        if not self.id:
            raise MfaNotConfigured(f"passkeys need {AUTHSVC_WEBAUTHN_RP_ID}")
        return self

    @property
    def expected_origins(self) -> list[str]:
        """The allowed origins (``https://`` + the RP id when none are set)."""
        return list(self.origins) or [f"https://{self.id}"]


def new_challenge() -> bytes:
    """32 random bytes for one ceremony."""
    return secrets.token_bytes(32)


def encode(data: bytes) -> str:
    """base64url without padding (how the challenge is kept in ``Challenge.data``)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """The bytes of ``encode``'s text."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def registration_options(
    rp: RelyingParty, user_id: uuid.UUID, email: str, challenge: bytes, existing: list[bytes]
) -> str:
    """PublicKeyCredentialCreationOptions (JSON) for a discoverable, user-verified passkey.

    Discoverable is required: a passkey sign-in names no credentials (naming them would
    tell a stranger which accounts have passkeys), so only a discoverable one answers.
    """
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=email,
        user_id=user_id.bytes,
        challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=_REQUIRED
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing],
    )
    return webauthn.options_to_json(options)


def authentication_options(rp: RelyingParty, challenge: bytes, allowed: list[bytes]) -> str:
    """PublicKeyCredentialRequestOptions (JSON); an empty ``allowed``: discoverable."""
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allowed],
        user_verification=_REQUIRED,
    )
    return webauthn.options_to_json(options)


@dataclass(frozen=True)
class NewCredential:
    """A verified registration."""

    credential_id: bytes
    public_key: bytes
    sign_count: int


def verify_registration(rp: RelyingParty, credential_json: str, challenge: bytes) -> NewCredential:
    """Checks a registration response; raises PasskeyInvalid (without the library's text)."""
    try:
        done = webauthn.verify_registration_response(
            credential=credential_json,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.expected_origins,
            require_user_verification=True,
        )
    except _MALFORMED:
        raise PasskeyInvalid() from None
    return NewCredential(done.credential_id, done.credential_public_key, done.sign_count)


def credential_id_of(assertion_json: str) -> bytes:
    """The raw credential id an assertion names; raises PasskeyInvalid when malformed."""
    try:
        return bytes(parse_authentication_credential_json(assertion_json).raw_id)
    except _MALFORMED:
        raise PasskeyInvalid() from None


def verify_assertion(
    rp: RelyingParty, assertion_json: str, challenge: bytes, passkey: Passkey
) -> int:
    """Checks an assertion's signature, challenge, origin, RP and UV; returns its counter.

    The counter is compared by ``advance_counter``, not here, so a regression can be
    told apart (and audited). Raises PasskeyInvalid.
    """
    try:
        webauthn.verify_authentication_response(
            credential=assertion_json,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.expected_origins,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
        parsed = parse_authentication_credential_json(assertion_json)
        data = parse_authenticator_data(bytes(parsed.response.authenticator_data))
    except _MALFORMED:
        raise PasskeyInvalid() from None
    return int(data.sign_count)


def advance_counter(db: DbSession, passkey_id: uuid.UUID, new_count: int, now: datetime) -> bool:
    """Stores a grown counter (or a zero one where the authenticator never counts).

    False when the counter did not grow: a cloned authenticator (or a replay).
    """
    # Zero after zero: an authenticator that never counts (allowed by WebAuthn).
    fine = or_(Passkey.sign_count < new_count, (Passkey.sign_count == 0) & (new_count == 0))
    done = db.execute(
        update(Passkey)
        .where(Passkey.id == passkey_id, fine)
        .values(sign_count=new_count, last_used_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def add(db: DbSession, user_id: uuid.UUID, new: NewCredential, name: str, now: datetime) -> Passkey:
    """Stores a registered passkey."""
    row = Passkey(
        user_id=user_id,
        credential_id=new.credential_id,
        public_key=new.public_key,
        sign_count=new.sign_count,
        name=name,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    db.flush()
    return row


def of_user(db: DbSession, user_id: uuid.UUID) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    query = select(Passkey).where(Passkey.user_id == user_id)
    return list(db.scalars(query.order_by(Passkey.created_at, Passkey.id)))


def by_credential(db: DbSession, credential_id: bytes) -> Passkey | None:
    """The passkey with this credential id, if any."""
    return db.scalar(select(Passkey).where(Passkey.credential_id == credential_id))


def remove(db: DbSession, user_id: uuid.UUID, passkey_id: uuid.UUID) -> None:
    """Deletes one passkey of the user; raises PasskeyNotFound."""
    done = db.execute(delete(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise PasskeyNotFound()
