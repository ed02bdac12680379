"""The background sender: delivers the outbox on a thread of its own.

It wakes when a change of this process queued mail (the outbox's event) and otherwise
every ``interval`` seconds (mail queued by other processes or replicas, retries come
due). Woken, it lets ``gather`` seconds pass before it claims, so that under load one
claim, one SMTP connection and one transaction of outcomes serve many mails instead of
one each. A database outage or an SMTP failure is logged and waited out; neither ever
reaches an RPC.
"""

from __future__ import annotations

import logging
import threading

from authsvc.flows.mail_delivery import MailDelivery

log = logging.getLogger("authsvc.mail")


class MailSender:
    """Runs ``delivery.deliver_due`` until stopped."""

    def __init__(self, delivery: MailDelivery, interval: float, gather: float = 0.2) -> None:
        self._delivery = delivery
        self._wake = delivery.wake_event
        self._interval = interval
        self._gather = gather
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authsvc-mail", daemon=True)

    def start(self) -> None:
        """Starts sending (at once: mail queued before a restart goes first)."""
        self._thread.start()

    def wake(self) -> None:
        """Looks for due mail now."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the mail in progress (a claimed mail not sent is due again
        after its lease, elsewhere or after a restart)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                done = self._delivery.deliver_due()
            except Exception:  # the database is down, say: try again next round
                log.warning("mail delivery round failed", exc_info=True)
                done = None
            if done is not None and done.attempts >= self._delivery.policy.batch:
                continue  # more may be due
            if self._wake.wait(self._interval):
                self._stop.wait(self._gather)
