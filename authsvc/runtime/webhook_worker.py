"""The webhook threads of a replica: one dispatcher, and one sender per endpoint.

The dispatcher wakes when events commit (PostgreSQL's ``NOTIFY``, through the replica's
``Wakeups``) or every poll interval, turns new events into deliveries
(``Webhooks.dispatch``) and keeps one sender thread per endpoint. A sender claims its
endpoint's due deliveries one at a time, POSTs each (``webhook_http.post``, outside any
transaction) and records the outcome. So a slow or dead endpoint holds only its own
sender: other endpoints' senders and the RPC threads never wait for it. Every replica
runs these threads; the database decides which one makes an attempt (see
``rules.webhook_deliveries``), so a replica may stop or die at any time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping

from authsvc.flows.webhooks import Webhooks
from authsvc.rules.webhook_deliveries import Attempt, Outcome
from authsvc.runtime import webhook_http
from authsvc.storage.event_wakeups import Wakeups

log = logging.getLogger(__name__)

Post = Callable[[str, str, Mapping[str, str], float, bool], Outcome]


class _Sender:
    """Delivers one endpoint's due deliveries, one at a time, until stopped."""

    def __init__(self, webhooks: Webhooks, webhook_id: uuid.UUID, interval: float, post: Post):
        self._webhooks = webhooks
        self._id = webhook_id
        self._interval = interval
        self._post = post
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"webhook-{str(webhook_id)[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before looking: a wake-up from now on is not lost
            try:
                attempt = self._webhooks.claim(self._id)
                if attempt is not None:
                    self._attempt(attempt)
                    continue
            except Exception:  # the database is down, say: try again next interval
                log.warning(
                    "webhook %s: could not claim or record a delivery", self._id, exc_info=True
                )
            self._wake.wait(self._interval)

    def _attempt(self, attempt: Attempt) -> None:
        policy = self._webhooks.policy
        try:
            headers = self._webhooks.signed_headers(attempt)
        except Exception as exc:  # no configured key opens the secret any more
            outcome = Outcome(0, f"cannot sign: {getattr(exc, 'message', type(exc).__name__)}")
        else:
            timeout = policy.timeout.total_seconds()
            outcome = self._post(
                attempt.url, attempt.payload, headers, timeout, policy.allow_private
            )
        if not outcome.delivered:
            log.info(
                "webhook %s: attempt %d of event %s failed: %s",
                self._id,
                attempt.number,
                attempt.event_id,
                outcome.error,
            )
        self._webhooks.record(attempt, outcome)


class WebhookWorker:
    """The dispatcher thread, which starts and stops the senders."""

    def __init__(
        self,
        webhooks: Webhooks,
        interval: float,
        wakeups: Wakeups | None = None,
        post: Post = webhook_http.post,
    ) -> None:
        self._webhooks = webhooks
        self._interval = interval
        self._wakeups = wakeups
        self._post = post
        self._senders: dict[uuid.UUID, _Sender] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-dispatch", daemon=True)

    def start(self) -> None:
        """Starts dispatching and sending."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops every thread; an attempt in flight may finish (its lease covers it)."""
        self._stopping.set()
        if self._wakeups is not None:
            self._wakeups.wake()  # the dispatcher may be waiting on them: it looks, and ends
        self._thread.join(timeout)
        for sender in self._senders.values():
            sender.stop()
        for sender in self._senders.values():
            sender.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            seen = self._wakeups.generation if self._wakeups else 0
            try:
                self._tick()
            except Exception:  # the database is down, say: try again next interval
                log.warning("webhook dispatch failed", exc_info=True)
            self._pause(seen)

    def _pause(self, seen: int) -> None:
        """Until the poll interval has passed, events commit, or ``stop()``."""
        end = time.monotonic() + self._interval
        while (left := end - time.monotonic()) > 0 and not self._stopping.is_set():
            if self._wakeups is None:
                self._stopping.wait(left)
            elif self._wakeups.generation != seen:
                return
            else:
                self._wakeups.wait(seen, left)  # returns at least every 0.25 s

    def _tick(self) -> None:
        fed = self._webhooks.dispatch()
        current = set(self._webhooks.endpoint_ids())
        for gone in set(self._senders) - current:
            self._senders.pop(gone).stop()
        for webhook_id in current - set(self._senders):
            sender = _Sender(self._webhooks, webhook_id, self._interval, self._post)
            self._senders[webhook_id] = sender
            sender.start()
        for webhook_id in fed:
            if webhook_id in self._senders:
                self._senders[webhook_id].wake()
