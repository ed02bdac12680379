"""gRPC health: SERVING while the database answers, NOT_SERVING otherwise.

The database is pinged every ``interval`` seconds, and at once whenever a call finds it
gone (NOT_SERVING right away, the ping then confirms) or succeeds while health says it is
gone, so health follows an outage and a recovery within a round trip, not a poll.
"""

from __future__ import annotations

import logging
import threading

from grpc_health.v1 import health, health_pb2

from authsvc.storage.engine import Database

log = logging.getLogger(__name__)

SERVICE_NAME = "authsvc.v1.AuthService"


class DatabaseHealth:
    """Polls the database and publishes the result for ``""`` and the AuthService."""

    def __init__(self, db: Database, interval: float) -> None:
        self.servicer = health.HealthServicer()
        self._db = db
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._ok: bool | None = None
        self._thread = threading.Thread(target=self._run, name="authsvc-health", daemon=True)

    def database_failed(self) -> None:
        """A call found the database unreachable: NOT_SERVING now, and a ping to confirm."""
        self._publish(False)
        self._wake.set()

    def call_succeeded(self) -> None:
        """A call succeeded: while NOT_SERVING, ping now (the database may be back)."""
        if self._ok is False and not self._wake.is_set():
            self._wake.set()

    def start(self) -> None:
        """Checks once now, then every ``interval`` seconds in a daemon thread."""
        self.check()
        self._thread.start()

    def check(self) -> bool:
        """Pings the database and sets the status; returns whether it answered."""
        ok = self._db.ping()
        self._publish(ok)
        return ok

    def stop(self) -> None:
        """Marks everything NOT_SERVING (we are draining) and stops polling."""
        self._stop.set()
        self._wake.set()
        self.servicer.enter_graceful_shutdown()

    def _publish(self, ok: bool) -> None:
        with self._lock:
            if ok == self._ok or self._stop.is_set():
                return
            # Transitions only: not a line per poll of a long outage.
            log.log(logging.INFO if ok else logging.WARNING, "database %s", _STATE[ok])
            self._ok = ok
            status = health_pb2.HealthCheckResponse.SERVING if ok else _NOT_SERVING
            for service in ("", SERVICE_NAME):
                self.servicer.set(service, status)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.check()


_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_STATE = {True: "answers: SERVING", False: "does not answer: NOT_SERVING"}
