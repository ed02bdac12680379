"""Checks and normalizes request fields. Each failure names its field.

All text that reaches the database passes through here: PostgreSQL refuses NUL
characters, and control characters in names or user agents are never legitimate.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from authsvc.errors import InvalidArgument

T = TypeVar("T")

EMAIL_MAX = 254
NAME_MAX = 128
USER_AGENT_MAX = 512
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000

# A pragmatic subset of RFC 5321: dot-atom local part, dotted domain of LDH labels.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def email(value: str, field: str = "email") -> str:
    """Trimmed, lower-cased, syntactically valid email of at most 254 characters."""
    value = value.strip().lower()
    if not value:
        raise InvalidArgument.of(field, "is required")
    if len(value) > EMAIL_MAX:
        raise InvalidArgument.of(field, f"must be at most {EMAIL_MAX} characters")
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
        raise InvalidArgument.of(field, "is not a valid email address")
    return value


def name(value: str, field: str) -> str:
    """A trimmed name of 1 to 128 characters with no control characters."""
    value = value.strip()
    if not value:
        raise InvalidArgument.of(field, "is required")
    if len(value) > NAME_MAX:
        raise InvalidArgument.of(field, f"must be at most {NAME_MAX} characters")
    if _has_control(value):
        raise InvalidArgument.of(field, "must not contain control characters")
    return value


def required(value: str, field: str) -> str:
    """``value`` unchanged; raises when it is empty."""
    if not value:
        raise InvalidArgument.of(field, "is required")
    return value


def uuid_id(value: str, field: str) -> uuid.UUID:
    """A UUID in text form."""
    if not value:
        raise InvalidArgument.of(field, "is required")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument.of(field, "is not a UUID") from None


def user_agent(value: str, field: str = "user_agent") -> str:
    """An optional user agent of at most 512 characters, without control characters."""
    value = value.strip()
    if len(value) > USER_AGENT_MAX:
        raise InvalidArgument.of(field, f"must be at most {USER_AGENT_MAX} characters")
    if _has_control(value):
        raise InvalidArgument.of(field, "must not contain control characters")
    return value


def ip_address(value: str, field: str = "ip_address") -> str:
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
        raise InvalidArgument.of(field, "is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise InvalidArgument.of(field, "must not carry an IPv6 zone id")
    return str(address)


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default (50); negative is an error; above 1000 is capped (AIP-158)."""
    if value < 0:
        raise InvalidArgument.of(field, "must not be negative")
    return min(value or PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)


class Violations:
    """Collects the violations of several fields so one error names them all."""

    def __init__(self) -> None:
        self._items: list[InvalidArgument] = []

    def check(self, check: Callable[..., T], *args: Any) -> T:
        """Runs ``check(*args)``; on InvalidArgument remembers it and returns a placeholder."""
        try:
            return check(*args)
        except InvalidArgument as exc:
            self._items.append(exc)
            return cast(T, None)

    def raise_any(self) -> None:
        """Raises one InvalidArgument with every collected violation, if any."""
        if self._items:
            raise InvalidArgument([v for exc in self._items for v in exc.violations])
