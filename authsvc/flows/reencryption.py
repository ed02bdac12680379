"""Sealing every stored secret again with the first ``AUTHSVC_SECRET_KEY``, after a new
key was put first, so the old keys can be dropped (``authsvc reencrypt-secrets``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from authsvc.flows.changes import NO_USER, Changes
from authsvc.rules import audit
from authsvc.rules.audit import AuditEvent
from authsvc.rules.secrets_at_rest import SecretKeys, reseal_column
from authsvc.storage.models import MailRow, SigningKey, TotpFactor, Webhook


@dataclass(frozen=True)
class Resealed:
    """How many secrets of each kind were sealed again."""

    totp_secrets: int
    webhook_secrets: int
    signing_keys: int
    mail_tokens: int

    def counts(self) -> dict[str, str]:
        """Each kind and how many, as text (the audit detail, the log line's fields)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


class Reencryption:
    """Re-seals the secrets at rest: TOTP seeds, webhook signing secrets, the private
    signing keys and the tokens of queued mail."""

    def __init__(self, changes: Changes, keys: SecretKeys) -> None:
        self._changes = changes
        self._keys = keys

    def reseal_all(self) -> Resealed:
        """Seals every stored secret with the first key, in one audited change
        (SECRETS_REENCRYPTED, with how many of each kind). Raises MfaNotConfigured
        without keys, or when a secret opens with none of them (nothing is changed)."""
        with self._changes.open() as change:
            db, keys, now = change.db, self._keys, change.now
            done = Resealed(
                totp_secrets=reseal_column(db, TotpFactor.secret, keys, now),
                webhook_secrets=reseal_column(db, Webhook.secret, keys, now),
                signing_keys=reseal_column(db, SigningKey.private_key, keys, now),
                mail_tokens=reseal_column(db, MailRow.sealed_token, keys, now),
            )
            counts = done.counts()
            detail = audit.counts_detail(counts)
            change.audit(AuditEvent.SECRETS_REENCRYPTED, NO_USER, detail, **counts)
        return done
