from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from authsvc.errors import MfaNotConfigured
from authsvc.rules.secrets_at_rest import SecretKeys


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_by_old = SecretKeys.parse(old).seal("JBSWY3DPEHPK3PXP")
    rotated = SecretKeys.parse(f"{new},{old}")
    assert rotated.unseal(sealed_by_old) == "JBSWY3DPEHPK3PXP"
    resealed = rotated.reencrypt(sealed_by_old)
    assert SecretKeys.parse(new).unseal(resealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(MfaNotConfigured):
        SecretKeys.parse(new).unseal(sealed_by_old)


def test_without_keys_nothing_is_sealed_and_no_key_is_shown() -> None:
    with pytest.raises(MfaNotConfigured):
        SecretKeys(()).seal("x")
    key = Fernet.generate_key().decode()
    assert key not in repr(SecretKeys.parse(key))
    with pytest.raises(ValueError, match="key 2"):
        SecretKeys.parse(f"{key},not-a-key")


# Sealed passkey sign-in challenges (issue 17): rules.challenges.seal / unseal.


def test_a_sealed_challenge_opens_until_it_expires_and_only_with_a_configured_key():
    from datetime import UTC, datetime, timedelta

    from cryptography.fernet import Fernet

    from authsvc.errors import ChallengeInvalid
    from authsvc.rules import challenges
    from authsvc.rules.secrets_at_rest import SecretKeys

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = challenges.seal(
        SecretKeys.parse(old), b"c" * 32, "ada@example.com", now + timedelta(minutes=5)
    )
    rotated = SecretKeys.parse(f"{new},{old}")  # a new key first: the old still opens
    opened = challenges.unseal(rotated, token, now)
    assert (opened.challenge, opened.email) == (b"c" * 32, "ada@example.com")
    for keys, when in (
        (rotated, now + timedelta(minutes=5)),  # expired
        (SecretKeys.parse(new), now),  # the old key dropped
    ):
        with pytest.raises(ChallengeInvalid):
            challenges.unseal(keys, token, when)
    for forged in (
        token + "\x00",
        token[:-3],
        "asv_pc_" + token[7:].upper(),
        "asv_ct_" + token[7:],
    ):
        with pytest.raises(ChallengeInvalid):
            challenges.unseal(rotated, forged, now)
