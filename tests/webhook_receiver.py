"""A real webhook receiver for tests: an HTTP server on 127.0.0.1, port 0, in a thread.

It records every request (headers and raw body) and answers as told: a status per
request (``answers``: a queue, then ``status`` for the rest), or it holds each request
until ``release()`` (a dead-slow endpoint). ``verified()`` checks each body's signature
with the ``standardwebhooks`` library, as a real receiver would.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

from authsvc.flows.changes import Changes, Who
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database
from authsvc.storage.models import utcnow
from authsvc.storage.validation_cache import ValidationCache


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class Receiver:
    """Start with ``with Receiver() as r:``; ``r.url`` is where to point a webhook.

    ``tls``: serve HTTPS with this certificate and key."""

    def __init__(self, status: int = 204, tls: tuple[str, str] | None = None) -> None:
        self.status = status
        self.answers: list[int] = []
        self.hold = False
        self.received: list[Received] = []
        self.arrived = 0  # requests read, answered or still held
        #: Picks the status from the body (None or 0: the usual answer).
        self.decide: Callable[[bytes], int | None] | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.arrived += 1
                if receiver.hold:
                    receiver._released.wait(60)
                with receiver._lock:
                    answer = receiver.answers.pop(0) if receiver.answers else receiver.status
                    if receiver.decide is not None:
                        answer = receiver.decide(body) or answer
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, answer)
                    )
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # (certificate, key) PEM files
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hooks"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def release(self) -> None:
        """Lets held requests (and every later one) through."""
        self.hold = False
        self._released.set()

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx, in the order they arrived."""
        with self._lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """The delivered events, each verified with ``standardwebhooks`` (raises if not)."""
        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.delivered()]


FAST = {
    "webhook_poll_interval": timedelta(milliseconds=50),
    "webhook_retry_schedule": (timedelta(milliseconds=50),) * 3,
    "webhook_timeout": timedelta(seconds=2),
    "webhook_allow_private": True,
}


def webhook_settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    """Test settings for webhooks: a secret key, loopback receivers allowed, a fast
    retry schedule (3 retries 50 ms apart) and a 50 ms poll."""
    values = {**FAST, "secret_key": SecretKeys.parse(Fernet.generate_key().decode())}
    return make_settings(**{**values, **overrides})


def emit(database: Database, user_id: uuid.UUID | None = None, count: int = 1) -> None:
    """Commits ``count`` account events (``user.enabled``), each in its own change."""
    changes = Changes(database, ValidationCache(0), utcnow)
    for _ in range(count):
        with changes.open() as change:
            change.event("user.enabled", Who(user_id))
