"""Which throttle each secret check runs under: the limits of sign-in, reset starts,
mailed tokens, sign-ups and second factors, derived from the throttle settings.

Passwords (sign-in, ChangePassword, re-authentication) share the account's policy, so a
password cannot be guessed through one of them instead; the others have their own
scope, and some their own IP keys (see ``rules.throttling``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from authsvc.rules.throttling import ThrottlePolicy
from authsvc.rules.user_tokens import Purpose

HOUR = timedelta(hours=1)


class ThrottleSettings(Protocol):
    """The settings the throttles are built from (``runtime.settings.Settings`` has them)."""

    @property
    def throttle_account_threshold(self) -> int: ...
    @property
    def throttle_base_delay(self) -> timedelta: ...
    @property
    def throttle_max_delay(self) -> timedelta: ...
    @property
    def throttle_account_limit(self) -> int: ...
    @property
    def throttle_account_window(self) -> timedelta: ...
    @property
    def throttle_ip_limit(self) -> int: ...
    @property
    def throttle_ip_window(self) -> timedelta: ...
    @property
    def throttle_forget_after(self) -> timedelta: ...
    @property
    def reset_start_limit(self) -> int: ...
    @property
    def sign_up_limit(self) -> int: ...


def sign_in_throttle(settings: ThrottleSettings) -> ThrottlePolicy:
    """The throttle of passwords (sign-in and ChangePassword), keyed by account."""
    return ThrottlePolicy(
        scope="account",
        threshold=settings.throttle_account_threshold,
        base_delay=settings.throttle_base_delay,
        max_delay=settings.throttle_max_delay,
        subject_limit=settings.throttle_account_limit,
        subject_window=settings.throttle_account_window,
        ip_limit=settings.throttle_ip_limit,
        ip_window=settings.throttle_ip_window,
        forget_after=settings.throttle_forget_after,
    )


def reset_start_throttle(settings: ThrottleSettings) -> ThrottlePolicy:
    """The throttle of StartPasswordReset: every start counts, per email and per IP.

    Its IP keys are its own, so starting resets never eats an IP's sign-in budget.
    """
    limit = settings.reset_start_limit
    return ThrottlePolicy(
        scope="reset_start",
        threshold=limit,
        base_delay=HOUR,
        max_delay=HOUR,
        subject_limit=limit,
        subject_window=HOUR,
        ip_limit=4 * limit,
        ip_window=HOUR,
        forget_after=HOUR,
        own_ip_keys=True,
    )


def token_throttle(settings: ThrottleSettings, purpose: Purpose) -> ThrottlePolicy:
    """The throttle of wrong reset or verification tokens: the end user's address only,
    the key sign-in counts too (a wrong secret is a failure). A 256-bit token cannot be
    guessed, so it has no budget of its own, and no key is shared by everyone; a live
    token is never throttled (``flows.token_check``)."""
    return replace(sign_in_throttle(settings), scope=f"{purpose.value}_token")


def sign_up_throttle(settings: ThrottleSettings) -> ThrottlePolicy:
    """The throttle of CreateUser: every sign-up costs a hash, so every one counts
    against its end-user address (its own keys, apart from sign-in's), at most
    ``AUTHSVC_SIGN_UP_LIMIT`` in any sliding hour. No subject: who signs up is no key."""
    return replace(
        reset_start_throttle(settings),
        scope="sign_up",
        ip_limit=settings.sign_up_limit,
    )


def second_factor_throttle(settings: ThrottleSettings) -> ThrottlePolicy:
    """The throttle of TOTP and recovery codes, keyed by user (scope ``totp``).

    Tighter than passwords: a 6-digit code has three valid values in a million, so
    at most 10 wrong codes per user an hour (about 1 in 800,000 odds of a guess in
    that hour), with the same growing delay after the threshold.
    """
    return replace(
        sign_in_throttle(settings),
        scope="totp",
        threshold=min(3, settings.throttle_account_threshold),
        subject_limit=10,
        subject_window=HOUR,
    )


def every_throttle(settings: ThrottleSettings) -> list[ThrottlePolicy]:
    """Every throttle the service runs, for how long throttling state matters."""
    return [
        sign_in_throttle(settings),
        reset_start_throttle(settings),
        sign_up_throttle(settings),
        *(token_throttle(settings, purpose) for purpose in Purpose),
        second_factor_throttle(settings),
    ]
