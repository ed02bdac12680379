"""The templates of the mail authsvc sends: subject, plain text and HTML for each kind.

Jinja2, HTML autoescaped. Defaults ship in ``mail_templates/`` next to this module; an
operator's directory (``AUTHSVC_MAIL_TEMPLATES``) overrides any of them, per locale:
for a user with locale ``de-CH`` the first of ``DIR/de-CH/NAME``, ``DIR/de/NAME``,
``DIR/NAME`` and the default ``NAME`` that exists is used. Names are
``KIND.subject.txt``, ``KIND.txt`` and ``KIND.html`` (``rules.mail.MailKind``).
Undefined variables are errors, and ``check()`` renders every template of every locale
directory with sample variables at start-up, so a broken template stops the start,
not the first send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from authsvc.rules.mail import MailKind
from authsvc.rules.values import locale_fallbacks

SUBJECT_MAX = 200
PARTS = ("subject.txt", "txt", "html")

_USER = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "locale": ""}
_COMMON = {
    "email": "ada@example.com",
    "user": _USER,
    "time": "2026-12-04 18:40 UTC",
    "ip_address": "203.0.113.7",
    "user_agent": "Mozilla/5.0",
}
#: The variables of each kind beyond the common ones (``email``, ``user``, ``time``,
#: ``ip_address``, ``user_agent``), with sample values: the README documents these.
VARIABLES: dict[MailKind, dict[str, str]] = {
    MailKind.PASSWORD_RESET: {
        "link": "https://app.example.com/reset?token=SAMPLE",
        "expires_at": "2026-12-04 19:40 UTC",
    },
    MailKind.PASSWORD_RESET_NO_ACCOUNT: {},
    MailKind.EMAIL_VERIFICATION: {
        "link": "https://app.example.com/verify?token=SAMPLE",
        "expires_at": "2026-12-05 18:40 UTC",
    },
    MailKind.SIGN_UP_ATTEMPT: {},
    MailKind.PASSWORD_CHANGED: {"how": "changed"},
    MailKind.EMAIL_CHANGED: {"old_email": "ada@example.com", "new_email": "ada@example.org"},
    MailKind.SECOND_FACTOR_ADDED: {"factor": "totp"},
    MailKind.SECOND_FACTOR_REMOVED: {"factor": "passkey"},
    MailKind.PASSKEY_ADDED: {"passkey_name": "YubiKey"},
    MailKind.ACCOUNT_DISABLED: {},
}


class TemplateProblem(ValueError):
    """A template cannot be loaded or rendered; the message names it (one line)."""


@dataclass(frozen=True)
class Rendered:
    """One mail's subject (a single line), plain text and HTML."""

    subject: str
    text: str
    html: str


def sample(kind: MailKind) -> dict[str, Any]:
    """The sample variables of ``kind`` (what ``check`` renders with)."""
    return {**_COMMON, **VARIABLES[kind]}


class MailTemplates:
    """Finds and renders the templates of each kind and locale."""

    def __init__(self, directory: str = "") -> None:
        self._directory = directory
        loaders: list[jinja2.BaseLoader] = []
        if directory:
            loaders.append(jinja2.FileSystemLoader(directory))
        loaders.append(jinja2.PackageLoader("authsvc.rules", "mail_templates"))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, kind: MailKind, locale: str, variables: dict[str, Any]) -> Rendered:
        """Renders the three parts for ``locale`` (with its fallbacks).

        Raises TemplateProblem (never after a successful ``check``, given the same
        variables).
        """
        subject, text, html = (self._render(kind, locale, part, variables) for part in PARTS)
        return Rendered(_one_line(subject), text, html)

    def _render(self, kind: MailKind, locale: str, part: str, variables: dict[str, Any]) -> str:
        name = f"{kind.value}.{part}"
        candidates = [f"{tag}/{name}" for tag in locale_fallbacks(locale)] + [name]
        try:
            template = self._env.select_template(candidates)
            return template.render(variables)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or exc.name
            raise TemplateProblem(f"{where} line {exc.lineno}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateProblem(f"{name} ({locale or 'default'}): {exc}") from None

    def locales(self) -> list[str]:
        """The locale directories of the operator's template directory."""
        if not self._directory:
            return []
        root = Path(self._directory)
        return sorted(p.name for p in root.iterdir() if p.is_dir())

    def check(self) -> None:
        """Renders every kind, for the default and each locale directory, with sample
        variables. Raises TemplateProblem naming the first broken template."""
        for locale in ["", *self.locales()]:
            for kind in MailKind:
                self.render(kind, locale, sample(kind))


def _one_line(subject: str) -> str:
    # A header: no line breaks (no header injection), and not endless.
    return re.sub(r"\s+", " ", subject).strip()[:SUBJECT_MAX]
