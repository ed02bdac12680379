"""``authsvc reencrypt-secrets``: after a key rotation, old keys can be dropped."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from cryptography.fernet import Fernet
from sqlalchemy import select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.cli import main
from authsvc.storage.models import AuditRecord, SigningKey
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import sign_in, sign_up


def enrolled_totp(stub, clock) -> str:
    """Signs up a user with a confirmed TOTP factor; returns its secret."""
    sign_up(stub)
    token = sign_in(stub).session_token
    secret = stub.StartTotpEnrollment(pb.StartTotpEnrollmentRequest(session_token=token)).secret
    code = pyotp.TOTP(secret).at(clock.now)
    stub.ConfirmTotpEnrollment(pb.ConfirmTotpEnrollmentRequest(session_token=token, code=code))
    return secret


def reencryptions(database) -> list[AuditRecord]:
    """The SECRETS_REENCRYPTED audit rows."""
    with database.transaction(writes=False) as db:
        found = select(AuditRecord).where(AuditRecord.event == "SECRETS_REENCRYPTED")
        return list(db.scalars(found))


def test_secrets_sealed_again_open_with_the_new_key_alone(
    start_server, clock, db_url, monkeypatch, capsys
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stub = start_server(secret_key=SecretKeys.parse(old))[1]
    secret = enrolled_totp(stub, clock)

    monkeypatch.setenv("AUTHSVC_SECRET_KEY", new)  # the old key is missing: refused
    assert main(["reencrypt-secrets", "--database-url", db_url]) == 1
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", f"{new},{old}")
    assert main(["reencrypt-secrets", "--database-url", db_url]) == 0
    assert "sealed 1 TOTP secrets" in capsys.readouterr().out

    rotated = start_server(secret_key=SecretKeys.parse(new))[1]
    clock.advance(timedelta(seconds=30))
    challenge = sign_in(rotated).challenge.challenge_token
    done = rotated.CompleteSignIn(
        pb.CompleteSignInRequest(
            challenge_token=challenge, totp_code=pyotp.TOTP(secret).at(clock.now)
        )
    )
    assert done.session.assurance_level == pb.ASSURANCE_LEVEL_AAL2


def test_reencryption_is_audited_with_how_many_secrets_of_each_kind(
    start_server, clock, db_url, database, monkeypatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    enrolled_totp(start_server(secret_key=SecretKeys.parse(old))[1], clock)
    with database.transaction(writes=False) as db:
        signing_keys = len(db.scalars(select(SigningKey)).all())

    monkeypatch.setenv("AUTHSVC_SECRET_KEY", new)
    assert main(["reencrypt-secrets", "--database-url", db_url]) == 1
    assert reencryptions(database) == []  # refused: nothing sealed, nothing audited
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", f"{new},{old}")
    assert main(["reencrypt-secrets", "--database-url", db_url]) == 0

    (audited,) = reencryptions(database)
    assert audited.user_id is None
    assert dict(pair.split("=") for pair in audited.detail.split()) == {
        "totp_secrets": "1",
        "webhook_secrets": "0",
        "signing_keys": str(signing_keys),
        "mail_tokens": "0",
    }
    assert signing_keys >= 1
