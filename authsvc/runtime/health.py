"""gRPC health: SERVING while the database answers, NOT_SERVING otherwise."""

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
        self._ok: bool | None = None
        self._thread = threading.Thread(target=self._run, name="authsvc-health", daemon=True)

    def start(self) -> None:
        """Checks once now, then every ``interval`` seconds in a daemon thread."""
        self.check()
        self._thread.start()

    def check(self) -> bool:
        """Pings the database and sets the status; returns whether it answered."""
        ok = self._db.ping()
        if ok != self._ok:  # log transitions, not every poll of a long outage
            log.log(logging.INFO if ok else logging.WARNING, "database %s", _STATE[ok])
            self._ok = ok
        status = health_pb2.HealthCheckResponse.SERVING if ok else _NOT_SERVING
        for service in ("", SERVICE_NAME):
            self.servicer.set(service, status)
        return ok

    def stop(self) -> None:
        """Marks everything NOT_SERVING (we are draining) and stops polling."""
        self._stop.set()
        self.servicer.enter_graceful_shutdown()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()


_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_STATE = {True: "answers: SERVING", False: "does not answer: NOT_SERVING"}
