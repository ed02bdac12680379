"""A real SMTP server for the mail tests: aiosmtpd with STARTTLS (a test CA) and AUTH.

It keeps what it received, can refuse with a chosen reply (a 5xx, say), and can stop
and start again on the same port (an SMTP outage).
"""

from __future__ import annotations

import asyncio
import email
import re
import ssl
import threading
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from authsvc.runtime.smtp import SmtpUrl
from tests.certs import CertificateAuthority
from tests.helpers import wait_until
from tests.pgcluster import free_port

USER, PASSWORD = "authsvc", "smtp-secret-pw"


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._server.in_data += 1
        if not self._server.released.is_set():  # mid-send, as long as the test wants
            await asyncio.get_running_loop().run_in_executor(None, self._server.released.wait)
        if self._server.reply:
            return self._server.reply
        message = email.message_from_bytes(envelope.content, policy=default)
        with self._server.lock:
            self._server.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


class MailServer:
    """aiosmtpd on 127.0.0.1: STARTTLS required before AUTH (LOGIN/PLAIN)."""

    def __init__(self, directory: Path, tls: str = "starttls") -> None:
        """``tls``: ``starttls`` (required before AUTH), ``implicit`` (smtps) or ``none``
        (a server that offers no STARTTLS and no AUTH)."""
        self.tls = tls
        ca = CertificateAuthority(directory, "smtp test CA")
        issued = ca.server()
        self.ca_file = str(ca.cert)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(issued.cert, issued.key)
        self.port = free_port()
        self.reply = ""  # e.g. "550 5.1.1 no such mailbox": refuse every mail
        self.released = threading.Event()  # cleared: every DATA waits until it is set again
        self.released.set()
        self.in_data = 0  # DATA commands begun
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def settings(self, **more: Any) -> dict[str, Any]:
        """Setting overrides of an authsvc that mails through this server."""
        from authsvc.rules.secrets_at_rest import SecretKeys

        return {
            "mail_delivery": "smtp",
            "smtp_url": SmtpUrl.parse(self.url),
            "smtp_ca_file": self.ca_file,
            "mail_from": "Example <no-reply@example.com>",
            "reset_url": "https://app.example.com/reset?token={token}",
            "verify_url": "https://app.example.com/verify?token={token}",
            "secret_key": SecretKeys.parse(FERNET_KEY),
            **more,
        }

    def env(self, **more: str) -> dict[str, str]:
        """The same as environment variables (for ``authsvc serve``)."""
        return {
            "AUTHSVC_MAIL_DELIVERY": "smtp",
            "AUTHSVC_SMTP_URL": self.url,
            "AUTHSVC_SMTP_CA_FILE": self.ca_file,
            "AUTHSVC_MAIL_FROM": "Example <no-reply@example.com>",
            "AUTHSVC_RESET_URL": "https://app.example.com/reset?token={token}",
            "AUTHSVC_VERIFY_URL": "https://app.example.com/verify?token={token}",
            "AUTHSVC_SECRET_KEY": FERNET_KEY,
            **more,
        }

    def start(self) -> None:
        options: dict[str, Any] = {
            "authenticator": _authenticate,
            "auth_require_tls": True,
            "tls_context": self._tls,
            "require_starttls": True,
        }
        if self.tls == "implicit":
            # TLS from the first byte: aiosmtpd does not see it, so AUTH must not ask for it.
            options = {
                "authenticator": _authenticate,
                "auth_require_tls": False,
                "ssl_context": self._tls,
            }
        elif self.tls == "none":
            options = {}
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="127.0.0.1",
            **options,
        )
        self._controller.start()

    def stop(self) -> None:
        self.released.set()  # no DATA left waiting on a thread of the server's loop
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self, to: str = "") -> list[EmailMessage]:
        with self.lock:
            return [m for rcpts, m in self.received if not to or to in rcpts]

    def wait_for(self, to: str, count: int = 1, timeout: float = 30.0) -> list[EmailMessage]:
        """The mails to ``to`` once at least ``count`` arrived."""
        return wait_until(
            lambda: len(self.messages(to)) >= count and self.messages(to),
            timeout,
            what=f"{count} mail(s) to {to}",
        )


FERNET_KEY = "2N3xV8Jm3lXq3lV5jV9mS6Qe8oJcTqg0mVv1e4aF3cM="


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok)


def body(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def link_token(message: EmailMessage, path: str) -> str:
    """The token of the link to ``path`` in the plain text of ``message``."""
    from urllib.parse import unquote

    found = re.search(rf"https://app\.example\.com/{path}\?token=(\S+)", body(message))
    assert found, body(message)
    return unquote(found.group(1))
