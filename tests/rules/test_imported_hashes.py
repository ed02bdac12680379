"""Recognizing and checking other systems' password hashes."""

from __future__ import annotations

import hashlib

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


# Hostile digits and bytes (issue 17): refused as unsupported, never raised.

_SALT = "saltsalt"
INDIC_12 = "\u0661\u0662"  # Arabic-Indic "12": isdigit() says yes, int() reads 12
INDIC_1000 = "\u0661\u0660\u0660\u0660"
INDIC_1024 = "\u0661\u0660\u0662\u0664"


def _hostile_hashes() -> dict[str, str]:
    h = old_hashes()
    return {
        "superscript_iterations": f"pbkdf2:sha256:²${_SALT}$" + "ab" * 32,
        "arabic_indic_iterations": f"pbkdf2:sha256:{INDIC_1000}${_SALT}$" + "ab" * 32,
        "arabic_indic_scrypt_n": f"scrypt:{INDIC_1024}:8:1$"
        + h["werkzeug-scrypt"].split("$", 1)[1],
        "arabic_indic_bcrypt_cost": f"$2b${INDIC_12}$" + h["bcrypt-2b"][7:],
        "arabic_indic_argon2_memory": h["argon2id"].replace("m=1024", f"m={INDIC_1024}"),
        "arabic_indic_django_iterations": h["django"].replace("$1000$", f"${INDIC_1000}$"),
        "nul_in_werkzeug_salt": "pbkdf2:sha256:1000$sa\x00lt$" + "ab" * 32,
        "nul_in_django_salt": h["django"].replace("seasalt", "sea\x00salt"),
        "newline_after_bcrypt": h["bcrypt-2b"] + "\n",
        "newline_after_django": h["django"] + "\n",
        "bidi_in_salt": "pbkdf2:sha256:1000$sa\u202elt$" + "ab" * 32,
    }


_HOSTILE = _hostile_hashes()


@pytest.mark.parametrize("hostile", _HOSTILE.values(), ids=_HOSTILE.keys())
def test_non_ascii_digits_and_control_characters_make_a_hash_unsupported(hostile):
    with pytest.raises(UnsupportedHash):
        format_of(hostile)
    assert check(hostile, OLD_PASSWORD) in (True, False)  # a sign-in never raises on one


# Cost bounded by what the service affords: about 2x its own hash (bench/import_hash_costs.py).

TOO_COSTLY = {
    "bcrypt_cost_13": "$2b$13$" + "a" * 21 + "u" + "a" * 30 + "C",
    "bcrypt_cost_16": "$2b$16$" + "a" * 21 + "u" + "a" * 30 + "C",
    "scrypt_2^18_8_7": "scrypt:262144:8:7$salt$" + "ab" * 64,
    "scrypt_2^17_8_2": "scrypt:131072:8:2$salt$" + "ab" * 64,
    "argon2_at_the_old_caps": "$argon2id$v=19$m=262144,t=16,p=16$"
    + "c2FsdHNhbHRzYWx0"
    + "$"
    + "A" * 43,
    "argon2_128MiB_3_passes": "$argon2id$v=19$m=131072,t=3,p=4$c2FsdHNhbHRzYWx0$" + "A" * 43,
    "pbkdf2_sha512_5e6": "pbkdf2:sha512:5000000$salt$" + "ab" * 64,
    "pbkdf2_sha512_default": "pbkdf2:sha512$salt$" + "ab" * 64,  # Werkzeug's 1,000,000
    "pbkdf2_sha256_2e6": "pbkdf2:sha256:2000000$salt$" + "ab" * 32,
    "django_2e6": "pbkdf2_sha256$2000000$seasalt$" + "A" * 43 + "=",
}


@pytest.mark.parametrize("costly", TOO_COSTLY.values(), ids=TOO_COSTLY.keys())
def test_a_hash_costing_more_than_about_twice_the_own_hash_is_refused(costly):
    with pytest.raises(UnsupportedHash) as caught:
        format_of(costly)
    assert any(why in str(caught.value) for why in ("cost", "outside", "MiB"))


AT_THE_CAPS = {
    "bcrypt_cost_12": "$2b$12$" + "a" * 21 + "u" + "a" * 30 + "C",
    "scrypt_2^20": "scrypt:131072:8:1$salt$" + "ab" * 64,
    "scrypt_own_method": "scrypt:32768:8:3$salt$" + "ab" * 64,
    "argon2_64MiB_4_passes": "$argon2id$v=19$m=65536,t=4,p=4$c2FsdHNhbHRzYWx0$" + "A" * 43,
    "pbkdf2_sha512_8e5": "pbkdf2:sha512:800000$salt$" + "ab" * 64,
    "pbkdf2_sha256_default": "pbkdf2:sha256$salt$" + "ab" * 32,
    "django_1.2e6": "pbkdf2_sha256$1200000$seasalt$" + "A" * 43 + "=",
}


@pytest.mark.parametrize("affordable", AT_THE_CAPS.values(), ids=AT_THE_CAPS.keys())
def test_common_costs_up_to_the_caps_are_accepted(affordable):
    assert format_of(affordable)


# Verifiable as stored: what the library would refuse at sign-in is refused at import.


@pytest.mark.parametrize(
    "method", ["scrypt:262144:8:16", "scrypt:16:1:1", "scrypt:2:8:1", "scrypt:65536:1:1"]
)
def test_scrypt_parameters_hashlib_refuses_are_refused(method):
    n, r, p = (int(x) for x in method.split(":")[1:])
    with pytest.raises(ValueError):  # what a sign-in would meet: the user could never sign in
        hashlib.scrypt(b"pw", salt=b"salt", n=n, r=r, p=p, maxmem=132 * n * r * p)
    with pytest.raises(UnsupportedHash):
        format_of(f"{method}$salt$" + "ab" * 64)


def test_a_bcrypt_salt_bcrypt_rejects_is_refused():
    good = old_hashes()["bcrypt-2b"]
    salt_end = 7 + 21  # the salt's last character carries 2 spare bits
    bad = good[:salt_end] + ("b" if good[salt_end] != "b" else "c") + good[salt_end + 1 :]
    with pytest.raises(ValueError):
        bcrypt.checkpw(OLD_PASSWORD.encode(), bad.encode())  # the library refuses it
    with pytest.raises(UnsupportedHash) as caught:
        format_of(bad)
    assert "salt" in str(caught.value)


def test_a_bcrypt_digest_bcrypt_never_computes_is_refused():
    good = old_hashes()["bcrypt-2b"]
    spare = "D" if good[-1] != "D" else "E"  # a last character with a spare bit set
    bad = good[:-1] + spare
    assert not bcrypt.checkpw(OLD_PASSWORD.encode(), bad.encode())  # never matches
    with pytest.raises(UnsupportedHash):
        format_of(bad)


def test_argon2_hashes_argon2_cannot_check_are_refused():
    good = old_hashes()["argon2id"]  # m=1024, p=1
    too_little = good.replace("m=1024", "m=8").replace("p=1", "p=4")
    *head, salt, digest = good.split("$")
    stray = "$".join([*head, salt, digest[:-1] + ("B" if digest[-1] != "B" else "C")])
    for bad in (too_little, stray):
        assert not check(bad, OLD_PASSWORD)  # argon2 refuses it: the user could never sign in
        with pytest.raises(UnsupportedHash):
            format_of(bad)
