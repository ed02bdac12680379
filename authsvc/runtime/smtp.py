"""Talking to the SMTP server (``AUTHSVC_SMTP_URL``) with smtplib.

``smtp://user:pass@host:port`` speaks plain SMTP and requires STARTTLS before it logs
in or sends (``?starttls=false`` allows a server without it: only on a trusted
network); ``smtps://`` is TLS from the first byte. Certificates are verified against
the system roots, or ``AUTHSVC_SMTP_CA_FILE`` for a private CA. The password never
appears in a repr, a log line or an error.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from authsvc.flows.mail_delivery import MailDeferred, MailRefused, Send

_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpUrl:
    """A parsed ``AUTHSVC_SMTP_URL``."""

    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    implicit_tls: bool = False
    starttls: bool = True

    @classmethod
    def parse(cls, text: str) -> SmtpUrl:
        """Parses ``smtp[s]://[user[:pass]@]host[:port][?starttls=false]``; raises
        ValueError saying what is wrong (never echoing the password)."""
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError:
            raise ValueError("is not a URL like smtp://user:pass@host:587") from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError("must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("names no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - {"starttls"})
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} (only starttls)")
        starttls = query.get("starttls", "true").lower()
        if starttls not in ("true", "false"):
            raise ValueError("starttls must be true or false")
        implicit = parts.scheme == "smtps"
        if implicit and "starttls" in query:
            raise ValueError("smtps:// is TLS throughout: starttls does not apply")
        return cls(
            host=parts.hostname,
            port=port or _DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            implicit_tls=implicit,
            starttls=not implicit and starttls == "true",
        )

    def __str__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


class SmtpTransport:
    """One connection per batch of mails (``flows.mail_delivery.Transport``)."""

    def __init__(self, url: SmtpUrl, ca_file: str = "", timeout: float = 30.0) -> None:
        self._url = url
        self._timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_file or None)

    @contextmanager
    def connect(self) -> Iterator[Send]:
        """Connects, says EHLO, starts TLS, logs in; yields the connection's Send.

        Entering raises MailDeferred (nothing to reach, no STARTTLS, a refused login).
        """
        smtp = _classifying(self._open)

        def send(message: EmailMessage) -> None:
            _classifying(lambda: smtp.send_message(message))

        try:
            yield send
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _open(self) -> smtplib.SMTP:
        url = self._url
        smtp: smtplib.SMTP
        if url.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                url.host, url.port, timeout=self._timeout, context=self._context
            )
        else:
            smtp = smtplib.SMTP(url.host, url.port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if url.starttls:
                if not smtp.has_extn("starttls"):
                    raise MailDeferred("the SMTP server offers no STARTTLS (required)")
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if url.username:
                smtp.login(url.username, url.password)
        except BaseException:
            smtp.close()
            raise
        return smtp


T = TypeVar("T")


def _classifying(step: Callable[[], T]) -> T:
    """Runs one SMTP step; raises MailRefused on a 5xx reply, MailDeferred on anything
    temporary (4xx, connection, timeout, TLS, a refused login)."""
    try:
        return step()
    except smtplib.SMTPAuthenticationError as exc:
        # The operator's configuration, not the mail: retried once it is fixed.
        raise MailDeferred(f"SMTP login refused ({exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = min(exc.recipients.values())
        raise _classified(code, reply) from None
    except smtplib.SMTPResponseException as exc:
        raise _classified(exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:  # connection, timeout, TLS
        raise MailDeferred(f"{type(exc).__name__}: {exc}") from None


def _classified(code: int, reply: bytes | str) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    summary = f"SMTP {code}: {' '.join(text.split())[:200]}"
    return MailRefused(summary) if 500 <= code < 600 else MailDeferred(summary)
