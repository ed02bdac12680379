"""How a user proves who they are: the methods, and the assurance level they add up to.

Storage keeps a session's methods as plain text (``storage.models.Authentication``, the
names below); this is where they mean something. ``AuthMethod`` is a ``StrEnum``, so a
stored name and its member compare and hash alike: ``"TOTP" in SECOND_FACTORS`` holds.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from authsvc.storage.models import Authentication


class AuthMethod(enum.StrEnum):
    """How a user proved who they are (``AuthenticationMethodType`` without its prefix)."""

    PASSWORD = "PASSWORD"  # noqa: S105 (a method's name, not a secret)
    TOTP = "TOTP"
    RECOVERY_CODE = "RECOVERY_CODE"
    PASSKEY = "PASSKEY"
    RESET = "RESET"


SECOND_FACTORS = frozenset({AuthMethod.TOTP, AuthMethod.RECOVERY_CODE, AuthMethod.PASSKEY})


def proven(method: AuthMethod, time: datetime) -> Authentication:
    """The record of ``method`` proven at ``time``, as a session stores it."""
    return Authentication(method.value, time)


def assurance_level(methods: Iterable[Authentication]) -> int:
    """2 (AAL2) once a session proved a second factor or a user-verified passkey, else 1.

    Only user-verified passkeys are ever recorded, so a passkey alone counts as two.
    """
    return 2 if any(a.method in SECOND_FACTORS for a in methods) else 1


def method_names(methods: Iterable[Authentication]) -> list[str]:
    """The names of ``methods``, in order (an access token's ``amr``, an event's data)."""
    return [AuthMethod(a.method).value for a in methods]
