"""Recognizing and checking other systems' password hashes."""

from __future__ import annotations

import bcrypt
import pytest
from werkzeug.security import generate_password_hash

from authsvc.rules import imported_hashes
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.hashing import Hasher
from authsvc.rules.imported_hashes import HashFormat, UnsupportedHash, check, format_of
from authsvc.rules.values import Rejected
from tests.flows.test_import import OLD_PASSWORD, django_hash, old_hashes

EXPECTED = {
    "werkzeug-pbkdf2": HashFormat.WERKZEUG_PBKDF2,
    "werkzeug-scrypt": HashFormat.WERKZEUG_SCRYPT,
    "bcrypt-2b": HashFormat.BCRYPT,
    "bcrypt-2a": HashFormat.BCRYPT,
    "bcrypt-2y": HashFormat.BCRYPT,
    "argon2id": HashFormat.ARGON2,
    "argon2i": HashFormat.ARGON2,
    "django": HashFormat.DJANGO_PBKDF2,
}


def test_each_format_is_recognized_and_checked():
    for name, password_hash in old_hashes().items():
        assert format_of(password_hash) == EXPECTED[name]
        assert check(password_hash, OLD_PASSWORD), name
        assert not check(password_hash, OLD_PASSWORD + "!"), name


def test_werkzeug_hashes_without_an_iteration_count_are_accepted():
    assert format_of("pbkdf2:sha256$salt$" + "ab" * 32) == HashFormat.WERKZEUG_PBKDF2


COSTLY_WERKZEUG = (
    "pbkdf2:sha256:99999999$salt$" + "ab" * 32,  # too many iterations to compute at sign-in
    "scrypt:65536:64:1$salt$" + "ab" * 64,  # 512 MiB to check
)


def _mangled() -> list[str]:
    h = old_hashes()
    scrypt_digest = h["werkzeug-scrypt"].split("$", 1)[1]
    return [
        "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",  # unknown method
        "plain-text-password",
        h["werkzeug-pbkdf2"][:-2],  # digest cut short
        h["werkzeug-pbkdf2"].replace("sha256", "whirlpool"),
        "pbkdf2:sha256:0$salt$" + "ab" * 32,  # no iterations
        *COSTLY_WERKZEUG,
        "scrypt:1000:8:1$" + scrypt_digest,  # N not a power of 2
        "scrypt:1024:8$" + scrypt_digest,  # p missing
        h["bcrypt-2b"][:-1],
        "$2x$" + h["bcrypt-2b"][4:],  # an unknown bcrypt variant
        "$2b$31$" + h["bcrypt-2b"][7:],  # cost 31: hours per check
        h["argon2id"].replace("$argon2id$", "$argon2d$"),
        h["argon2id"].replace("m=1024", "m=4194304"),  # 4 GiB
        h["argon2id"].replace("v=19", "v=16"),
        h["django"][:-2],
        h["django"].replace("pbkdf2_sha256$", "pbkdf2_sha1$"),
        "x" * 300,
    ]


_MANGLED = _mangled()


# Ids by position: the hashes carry random salts, and pytest-xdist's workers must collect
# the same test ids.
@pytest.mark.parametrize("mangled", _MANGLED, ids=[f"case{i}" for i in range(len(_MANGLED))])
def test_unknown_malformed_or_too_costly_hashes_are_refused(mangled):
    with pytest.raises(UnsupportedHash) as caught:
        format_of(mangled)
    assert mangled not in str(caught.value)
    if mangled not in COSTLY_WERKZEUG:  # (authsvc's own method may be as costly)
        assert check(mangled, OLD_PASSWORD) is False  # and sign-in never raises on one


def test_an_empty_hash_is_missing_not_unsupported():
    with pytest.raises(Rejected) as caught:
        format_of("")
    assert not isinstance(caught.value, UnsupportedHash)


def test_a_werkzeug_hash_of_the_raw_password_matches_when_normalization_changes_it():
    typed = "ﬁsh and chips!"  # NFKC turns the ligature into "fi"
    old = generate_password_hash(typed, "pbkdf2:sha256:1000")  # the old system: as typed
    assert check(old, typed)
    assert not check(old, "fish and chips!")


def test_bcrypt_checks_the_first_72_bytes_as_the_old_libraries_did():
    password = "x" * 100
    old = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4)).decode()
    assert check(old, password)


def test_the_hasher_verifies_foreign_hashes_and_always_rehashes_them():
    hasher = Hasher("pbkdf2:sha256:1000", HashCapacity(1, 4))
    try:
        for name, password_hash in old_hashes().items():
            assert hasher.verify(password_hash, OLD_PASSWORD), name
            assert not hasher.verify(password_hash, "wrong password"), name
            assert hasher.needs_rehash(password_hash), name  # none is of the current method
        native = hasher.hash(OLD_PASSWORD)
        assert not hasher.needs_rehash(native)
        assert not imported_hashes.is_werkzeug(django_hash(OLD_PASSWORD))
    finally:
        hasher.close()


def test_a_foreign_check_cheaper_than_the_current_method_is_padded_to_its_time():
    hasher = Hasher("pbkdf2:sha256:1000", HashCapacity(1, 4))
    try:
        hasher._check_time = 0.05  # as if the current method took 50 ms here
        _, shortfall = hasher._check(django_hash(OLD_PASSWORD, iterations=1), OLD_PASSWORD)
        assert 0 < shortfall <= 0.05
        _, native = hasher._check(hasher.hash(OLD_PASSWORD), OLD_PASSWORD)
        assert native == 0
    finally:
        hasher.close()
