"""Watches the whole suite for secrets in the logs.

Every channel the tests open records the passwords it sends (when accepted), the
tokens it sends or receives (sealed passkey challenges, ``asv_pc_``, among them), the
webhook signing secrets (``whsec_``) it receives and the API keys it sends as
``x-api-key`` metadata (tests that create keys or webhook secrets outside a call,
through the CLI, hand them to ``learn``); a handler on the root logger keeps the text
of every log record. After each test, an autouse fixture (``tests/conftest.py``) checks
that none of the secrets seen so far, nor a SHA-256 of a token, nor any password hash,
appears in a record logged during that test. So the check holds whatever tests run, in
whatever order, in one process or several (``-k``, ``-p xdist``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
import traceback
from typing import Any

import grpc

PASSWORD_FIELDS = ("password", "current_password", "new_password")
TOKEN_FIELDS = (
    "session_token",
    "update_token",
    "reset_token",
    "verification_token",
    "challenge_token",
)
#: Second-factor secrets (TOTP seeds, codes, recovery codes), from requests and responses.
CODE_FIELDS = ("secret", "code", "totp_code", "recovery_code", "recovery_codes")
#: Messages nested in requests or responses whose own fields are learnt too.
NESTED_FIELDS = ("challenge", "passkey_assertion")
API_KEY_HEADER = "x-api-key"
_TOKEN = re.compile(r"asv_(?:[surcv]t|ak)_[A-Za-z0-9_-]{43}")
# A sealed passkey sign-in challenge (``rules.challenges.SEALED_PREFIX``): a Fernet token.
_SEALED_CHALLENGE = re.compile(r"asv_pc_[A-Za-z0-9_-]{100,2000}={0,2}")
# A webhook signing secret (``rules.webhooks.SECRET_PREFIX``): base64 of random bytes.
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{24,}={0,2}")
# A password that is also a word of the logs' own vocabulary (the fuzzer's generated
# passwords can be "TOKEN_EXPIRED") would match every line naming that reason or event:
# such a "password" proves nothing, so it is not watched. Nor is one that is a UUID: the
# fuzzer draws strings from the ids it has seen, and a user's id set as its password
# would match every line naming that user.
_UNWATCHABLE = re.compile(
    r"^[A-Z0-9_]+$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
# Werkzeug's (authsvc's own), and the formats ImportUsers takes: bcrypt, argon2, Django.
_PASSWORD_HASH = re.compile(
    r"(?:scrypt|pbkdf2):[\w:]+\$[^\s$]+\$[0-9a-f]{16,}"
    r"|\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"
    r"|\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+"
    r"|pbkdf2_sha256\$\d+\$[^\s$]+\$[A-Za-z0-9+/]{43}="
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class LeakWatch(logging.Handler):
    """Collects log text and the secrets the tests' traffic used."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.passwords: set[str] = set()
        self.tokens: set[str] = set()
        self.api_keys: set[str] = set()  # x-api-key values, well-formed or not
        self.codes: set[str] = set()
        self.sealed_challenges: set[str] = set()  # asv_pc_ tokens, sent or received
        self.webhook_secrets: set[str] = set()  # whsec_ secrets, as CreateWebhook shows them
        #: The signatures of access tokens (JWTs) seen: one in a log means the token is.
        self.access_tokens: set[str] = set()
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = [record.getMessage()]
        except Exception:  # a bad format string is not our concern here
            parts = [str(record.msg), repr(record.args)]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        parts += [str(v) for k, v in vars(record).items() if k not in _STANDARD]
        with self._lock:
            self.texts.append("\n".join(parts))

    def note_call(self, request: Any, response: Any | None) -> None:
        """Remembers the secrets of one unary call (passwords only if it succeeded)."""
        messages = [m for m in (request, response) if m is not None]
        messages += [_nested(m, f) for m in messages for f in NESTED_FIELDS if _nested(m, f)]
        for message in messages:
            for field in TOKEN_FIELDS:
                value = getattr(message, field, "")
                if isinstance(value, str):
                    self.learn(value)
            access = getattr(message, "access_token", "")
            if isinstance(access, str) and access.count(".") == 2 and len(access) > 64:
                self.access_tokens.add(access.rsplit(".", 1)[1])
            # Like passwords, a code sent is a secret only if it was right.
            if message is request and response is None:
                continue
            for field in CODE_FIELDS:
                value = getattr(message, field, "")
                for item in [value] if isinstance(value, str) else list(value):
                    if isinstance(item, str) and _WEBHOOK_SECRET.fullmatch(item):
                        self.learn(item)  # CreateWebhook's ``secret``: no code
                    elif isinstance(item, str) and len(item.strip()) >= 6:
                        self.codes.add(item.strip())
        if response is not None:
            for field in PASSWORD_FIELDS:
                value = getattr(request, field, "")
                if isinstance(value, str) and len(value) >= 8 and not _UNWATCHABLE.match(value):
                    self.passwords.add(value)

    def learn(self, secret: str) -> None:
        """Remembers a token, API key, sealed challenge or webhook secret (one that
        reached the test outside a call's fields, too); ignores anything else."""
        with self._lock:
            if _TOKEN.fullmatch(secret):
                self.tokens.add(secret)
            elif _SEALED_CHALLENGE.fullmatch(secret):
                self.sealed_challenges.add(secret)
            elif _WEBHOOK_SECRET.fullmatch(secret):
                self.webhook_secrets.add(secret)

    def note_metadata(self, metadata: Any) -> None:
        """Remembers the API keys a call sends as ``x-api-key`` (even malformed ones)."""
        for key, value in metadata or ():
            if key == API_KEY_HEADER and isinstance(value, str) and len(value) >= 8:
                with self._lock:
                    self.api_keys.add(value)
                self.learn(value)

    def mark(self) -> int:
        """Where the records logged from now on begin (for ``leaks``)."""
        with self._lock:
            return len(self.texts)

    def tracebacks(self, since: int = 0) -> list[str]:
        """The records since ``mark`` that carry a traceback (an unexpected error)."""
        with self._lock:
            return [t for t in self.texts[since:] if "Traceback (most recent call last)" in t]

    def leaks(self, since: int = 0) -> list[str]:
        """Every secret found in the records since ``mark``, described without repeating it."""
        with self._lock:
            text = "\n".join(self.texts[since:])
        found = [f"token {t[:10]}…" for t in set(_TOKEN.findall(text)) & self.tokens]
        digests = {hashlib.sha256(t.encode()).hexdigest() for t in self.tokens}
        found += [f"token hash {h[:8]}…" for h in set(_HEX64.findall(text)) & digests]
        found += [f"password hash {m[:12]}…" for m in _PASSWORD_HASH.findall(text)]
        found += [f"password {p[:2]}…" for p in self.passwords if p in text]
        found += [f"API key {k[:9]}…" for k in self.api_keys if k in text]
        found += [f"code {c[:2]}…" for c in self.codes if _code_in(c, text)]
        found += [f"access token …{s[-4:]}" for s in self.access_tokens if s in text]
        found += [
            f"sealed challenge {c[:9]}…"
            for c in self.sealed_challenges
            if c.removeprefix("asv_pc_") in text
        ]
        found += [
            f"webhook secret {s[:8]}…"
            for s in self.webhook_secrets
            if any(form in text for form in _webhook_secret_forms(s))
        ]
        return found


def _nested(message: Any, field: str) -> Any:
    try:
        return getattr(message, field) if message.HasField(field) else None
    except (ValueError, AttributeError):  # the message has no such field
        return None


def _webhook_secret_forms(secret: str) -> tuple[str, ...]:
    """The secret, its base64 key without the prefix (covering the secret itself), and
    the key's bytes in hex: each is enough to sign as authsvc does."""
    key = secret.removeprefix("whsec_")
    try:
        return key, base64.b64decode(key, validate=True).hex()
    except binascii.Error:
        return (key,)


def _code_in(code: str, text: str) -> bool:
    # A 6-digit code must stand alone: it could be part of any longer number by chance.
    return re.search(rf"(?<![0-9A-Za-z.:]){re.escape(code)}(?![0-9A-Za-z.:])", text) is not None


class _Recorder(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, watch: LeakWatch) -> None:
        self._watch = watch

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self._watch.note_metadata(details.metadata)
        outcome = continuation(details, request)
        # Never wait here: ``.future()`` calls must stay asynchronous.
        outcome.add_done_callback(lambda done: self._note(request, done))
        return outcome

    def _note(self, request: Any, done: Any) -> None:
        try:
            response = done.result() if done.exception() is None else None
        except (grpc.RpcError, grpc.FutureCancelledError):
            response = None
        self._watch.note_call(request, response)


def attach(watch: LeakWatch) -> None:
    """Puts ``watch`` (back) on the root logger, at DEBUG: a test that configured logging
    (``configure_logging`` replaces the root's handlers) must not blind it for the rest."""
    root = logging.getLogger()
    if watch not in root.handlers:
        root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    # As in production (runtime.logs): SQLAlchemy's engine logs result rows at DEBUG.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)


def install(watch: LeakWatch) -> None:
    """Hooks ``watch`` into every channel the tests open and onto the root logger."""
    recorder = _Recorder(watch)
    for name in ("insecure_channel", "secure_channel"):
        original = getattr(grpc, name)

        def opened(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            return grpc.intercept_channel(_original(*args, **kwargs), recorder)

        setattr(grpc, name, opened)
    attach(watch)


WATCH = LeakWatch()
