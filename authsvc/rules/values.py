"""The values requests carry, checked and normalized: emails, names, ids, addresses.

Each check returns the normalized value or raises ``Rejected`` saying what is wrong; it
knows no field path. The edge runs them on request fields and names the field.

All text that reaches the database passes through here: PostgreSQL refuses NUL
characters, and control characters in names or user agents are never legitimate. Nor are
bidirectional overrides and line separators in a text another person reads (a name, a
user agent, a passkey's name): they make a listing lie about what it shows. Digits are
ASCII digits (``str.isdigit`` also takes "²" and "١٢", which ``int`` then reads or
refuses), and a JSON document is measured (length, nesting) before anything parses it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NewType

EMAIL_MAX = 254
NAME_MAX = 128
USER_AGENT_MAX = 512
PASSKEY_NAME_MAX = 128
RECOVERY_CODE_MAX = 64
#: A WebAuthn response is a few kilobytes at most.
JSON_MAX = 16 * 1024
#: WebAuthn responses nest three levels deep; a little room for extensions.
JSON_MAX_DEPTH = 8
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000
EVENT_PAGE_SIZE_DEFAULT = 100

#: A trimmed, lower-cased, syntactically valid email address.
Email = NewType("Email", str)

# A pragmatic subset of RFC 5321: dot-atom local part, dotted domain of LDH labels.
# Matched with fullmatch: "$" alone also matches before a trailing newline.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_ASCII_DIGITS = re.compile(r"[0-9]+")
# Bidirectional embeddings, overrides and isolates, and the implicit marks (Unicode
# UAX #9): they reorder what a reader sees ("\u202egpj.exe" reads "exe.jpg").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Control and surrogate code points, and line or paragraph separators.
_UNSHOWABLE = frozenset({"Cc", "Cs", "Zl", "Zp"})


class Rejected(ValueError):
    """A value is malformed or out of policy; the message says why (never the value)."""


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _unshowable(text: str) -> bool:
    """True when ``text`` holds a character that has no place in a text people read."""
    return any(ch in _BIDI_CONTROLS or unicodedata.category(ch) in _UNSHOWABLE for ch in text)


def is_ascii_number(text: str) -> bool:
    """True for one or more ASCII digits (``str.isdigit`` also takes "²" and "١٢")."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def email(value: str) -> Email:
    """Trimmed, lower-cased, syntactically valid email of at most 254 characters."""
    value = value.strip().lower()
    if not value:
        raise Rejected("is required")
    if len(value) > EMAIL_MAX:
        raise Rejected(f"must be at most {EMAIL_MAX} characters")
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    valid = (
        at
        and 0 < len(local) <= 64
        and _LOCAL.fullmatch(local)
        and len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and not is_ascii_number(labels[-1])
    )
    if not valid:
        raise Rejected("is not a valid email address")
    return Email(value)


def name(value: str) -> str:
    """A trimmed name of 1 to 128 characters with no control characters.

    Also refused: bidirectional overrides and line separators. Joiners stay (Persian
    and Indic names, emoji sequences need them).
    """
    value = value.strip()
    if not value:
        raise Rejected("is required")
    if len(value) > NAME_MAX:
        raise Rejected(f"must be at most {NAME_MAX} characters")
    if _unshowable(value):
        raise Rejected("must not contain control characters")
    return value


def passkey_name(value: str) -> str:
    """A trimmed passkey name of at most 128 characters ("passkey" when empty), with no
    control characters, newlines or bidirectional overrides (it is shown in listings)."""
    value = value.strip()
    if len(value) > PASSKEY_NAME_MAX:
        raise Rejected(f"must be at most {PASSKEY_NAME_MAX} characters")
    if _unshowable(value):
        raise Rejected("must not contain control characters, newlines or bidi overrides")
    return value or "passkey"


def required(value: str) -> str:
    """``value`` unchanged; rejected when it is empty."""
    if not value:
        raise Rejected("is required")
    return value


def uuid_id(value: str) -> uuid.UUID:
    """A UUID in text form."""
    if not value:
        raise Rejected("is required")
    # uuid.UUID reads its hex digits with int(), which also takes "١٢".
    if not value.isascii():
        raise Rejected("is not a UUID")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Rejected("is not a UUID") from None


def optional_uuid_id(value: str) -> uuid.UUID | None:
    """A UUID in text form, or None when empty."""
    return uuid_id(value) if value else None


def user_agent(value: str) -> str:
    """An optional user agent of at most 512 characters, without control characters."""
    value = value.strip()
    if len(value) > USER_AGENT_MAX:
        raise Rejected(f"must be at most {USER_AGENT_MAX} characters")
    if _unshowable(value):
        raise Rejected("must not contain control characters")
    return value


def ip_address(value: str) -> str:
    """An optional IPv4 or IPv6 address, in its compressed canonical form.

    IPv6 zone ids (``fe80::1%eth0``) are refused: they name an interface of the
    sender's own host, mean nothing here, and are free text (any length, NUL, ...).
    """
    value = value.strip()
    if not value:
        return ""
    if not value.isascii():
        raise Rejected("is not an IPv4 or IPv6 address")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise Rejected("is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise Rejected("must not carry an IPv6 zone id")
    return str(address)


def page_size(value: int) -> int:
    """0 means the default (50); negative is rejected; above 1000 is capped (AIP-158)."""
    if value < 0:
        raise Rejected("must not be negative")
    return min(value or PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)


def event_page_size(value: int) -> int:
    """ListEvents: 0 means the default (100); negative is rejected; above 1000 is capped."""
    if value < 0:
        raise Rejected("must not be negative")
    return min(value or EVENT_PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)


def totp_code(value: str) -> str:
    """Six digits (spaces allowed, as apps show ``123 456``)."""
    plain = value.replace(" ", "")
    if not plain:
        raise Rejected("is required")
    if len(plain) != 6 or not plain.isascii() or not plain.isdigit():
        raise Rejected("must be 6 digits")
    return plain


def recovery_code(value: str) -> str:
    """A recovery code as typed (dashes and spaces allowed); checked against the store."""
    if not value.strip():
        raise Rejected("is required")
    if len(value) > RECOVERY_CODE_MAX:
        raise Rejected("is too long")
    if _has_control(value):
        raise Rejected("must not contain control characters")
    return value


def json_document(value: str) -> str:
    """A JSON object of at most 16 KiB nested at most 8 deep, unchanged.

    Measured before it is parsed (the nesting by a scan, not by recursion), so a
    5000-deep document costs a linear scan, not Python's recursion limit.
    """
    if not value.strip():
        raise Rejected("is required")
    if len(value) > JSON_MAX:
        raise Rejected(f"must be at most {JSON_MAX // 1024} KiB")
    if nesting(value) > JSON_MAX_DEPTH:
        raise Rejected(f"must not nest deeper than {JSON_MAX_DEPTH} levels")
    try:
        parsed = json.loads(value)
    except ValueError:  # RecursionError cannot happen: the depth is bounded above
        raise Rejected("is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise Rejected("is not a JSON object")
    return value


def nesting(text: str) -> int:
    """How deep the brackets of a JSON text nest (those inside strings aside)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


LOCALE_MAX = 35
# BCP 47 language tags as mail templates need them: language, optional script, region
# and variants (RFC 5646 "langtag"; extensions and private use are not templates' concern).
_LOCALE = re.compile(
    r"^(?P<language>[a-z]{2,3})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*)\Z"
)


def locale(value: str) -> str:
    """An optional BCP 47 language tag (``en``, ``de-CH``, ``zh-Hant-TW``), in its
    canonical case (language lower, script title, region upper); "" when empty."""
    value = value.strip().replace("_", "-")
    if not value:
        return ""
    if len(value) > LOCALE_MAX:
        raise Rejected(f"must be at most {LOCALE_MAX} characters")
    match = _LOCALE.match(value.lower()) if value.isascii() else None
    if match is None:
        raise Rejected("is not a BCP 47 language tag like en or de-CH")
    parts = [match["language"]]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    parts += [v for v in match["variants"].split("-") if v]
    return "-".join(parts)


def locale_fallbacks(tag: str) -> list[str]:
    """The tag, then each shorter prefix: ``de-CH`` → ``["de-CH", "de"]``; "" → []."""
    parts = tag.split("-") if tag else []
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def since_1970(value: datetime | None) -> datetime | None:
    """An optional time (an imported user's creation), no earlier than 1970."""
    if value is not None and value.year < 1970:
        raise Rejected("must be in 1970 or later")
    return value


def is_totp_shaped(value: str) -> bool:
    """True when ``value`` reads as a TOTP code (six digits, spaces aside); a second
    factor code that does not can only be a recovery code."""
    plain = value.replace(" ", "")
    return len(plain) == 6 and plain.isascii() and plain.isdigit()


def users_batch(count: int, maximum: int) -> int:
    """The number of users of one batch (an import): 1 to ``maximum``."""
    if not count:
        raise Rejected("is required")
    if count > maximum:
        raise Rejected(f"must hold at most {maximum} users")
    return count


def update_mask(
    paths: Sequence[str], updatable: Sequence[str], given: Collection[str]
) -> list[str]:
    """The fields an update sets (AIP-134): the mask's paths, once each; for ``*`` every
    field of ``updatable``; for an empty mask those of them that are ``given`` (set).

    Rejected when a path names no updatable field, or when no field is left.
    """
    if any(p not in updatable and p != "*" for p in paths):
        # Never echoed: a path is caller text (NUL, bidi overrides, 64 KiB of it).
        raise Rejected(f"names a field that cannot be updated ({', '.join(updatable)})")
    if "*" in paths:
        chosen = list(updatable)
    else:
        chosen = list(dict.fromkeys(paths)) or [p for p in updatable if p in given]
    if not chosen:
        raise Rejected("names no field to update")
    return chosen
