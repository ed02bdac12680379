"""The values requests carry, checked and normalized: emails, names, ids, addresses.

Each check returns the normalized value or raises ``Rejected`` saying what is wrong; it
knows no field path. The edge runs them on request fields and names the field.

All text that reaches the database passes through here: PostgreSQL refuses NUL
characters, and control characters in names or user agents are never legitimate.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import uuid
from typing import NewType

EMAIL_MAX = 254
NAME_MAX = 128
USER_AGENT_MAX = 512
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000
EVENT_PAGE_SIZE_DEFAULT = 100

#: A trimmed, lower-cased, syntactically valid email address.
Email = NewType("Email", str)

# A pragmatic subset of RFC 5321: dot-atom local part, dotted domain of LDH labels.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class Rejected(ValueError):
    """A value is malformed or out of policy; the message says why (never the value)."""


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


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
        and _LOCAL.match(local)
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:
        raise Rejected("is not a valid email address")
    return Email(value)


def name(value: str) -> str:
    """A trimmed name of 1 to 128 characters with no control characters."""
    value = value.strip()
    if not value:
        raise Rejected("is required")
    if len(value) > NAME_MAX:
        raise Rejected(f"must be at most {NAME_MAX} characters")
    if _has_control(value):
        raise Rejected("must not contain control characters")
    return value


def required(value: str) -> str:
    """``value`` unchanged; rejected when it is empty."""
    if not value:
        raise Rejected("is required")
    return value


def uuid_id(value: str) -> uuid.UUID:
    """A UUID in text form."""
    if not value:
        raise Rejected("is required")
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
    if _has_control(value):
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
    if len(value) > 64:
        raise Rejected("is too long")
    return value
