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
