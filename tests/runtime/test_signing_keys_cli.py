"""``authsvc keys rotate | list``, and ``reencrypt-secrets`` sealing signing keys again."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.cli import main
from authsvc.runtime.settings import ConfigError, Settings
from authsvc.storage.models import SigningKey


def _rows(database) -> list[SigningKey]:
    with database.transaction(writes=False) as db:
        return sorted(db.scalars(select(SigningKey)), key=lambda k: k.signs_from)


def test_keys_rotate_publishes_a_key_that_signs_one_lead_later(
    db_url, database, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("AUTHSVC_ACCESS_TOKEN_TTL", "5m")
    monkeypatch.setenv("AUTHSVC_JWKS_REFRESH", "5m")
    assert main(["keys", "rotate", "--database-url", db_url]) == 0  # the first signs at once
    assert main(["keys", "rotate", "--database-url", db_url]) == 0
    first, second = _rows(database)
    assert first.signs_from == first.published_at
    assert (second.signs_from - second.published_at).total_seconds() == 600
    assert main(["keys", "list", "--database-url", db_url]) == 0
    listed = capsys.readouterr().out
    assert first.kid in listed and second.kid in listed


def test_keys_rotate_without_a_secret_key_is_refused(db_url, database, monkeypatch, capsys):
    monkeypatch.delenv("AUTHSVC_SECRET_KEY", raising=False)
    assert main(["keys", "rotate", "--database-url", db_url]) == 1
    assert "AUTHSVC_SECRET_KEY" in capsys.readouterr().err
    assert _rows(database) == []


def test_reencrypt_secrets_seals_signing_keys_with_the_new_key(
    db_url, database, monkeypatch, capsys
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", old)
    assert main(["keys", "rotate", "--database-url", db_url]) == 0
    (before,) = _rows(database)
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", f"{new},{old}")
    assert main(["reencrypt-secrets", "--database-url", db_url]) == 0
    assert "sealed 1 signing keys" in capsys.readouterr().out
    (after,) = _rows(database)
    raw = base64.b64decode(SecretKeys.parse(new).unseal(after.private_key))
    assert base64.b64decode(SecretKeys.parse(old).unseal(before.private_key)) == raw


def test_a_rotation_period_shorter_than_the_lead_is_refused() -> None:
    with pytest.raises(ConfigError, match="AUTHSVC_SIGNING_KEY_ROTATION"):
        Settings(signing_key_rotation=timedelta(minutes=10))  # TTL 5m + refresh 5m
    assert Settings(signing_key_rotation=timedelta(0)).signing_key_rotation == timedelta(0)
