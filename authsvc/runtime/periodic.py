"""Work a server does on a timer: the housekeeping purge, the access log's summaries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``task`` every ``interval`` seconds in a daemon thread until stopped.

    A round that raises is logged and the next one runs on time (a database outage
    passes). ``stop`` lets a round in progress finish.
    """

    def __init__(self, task: Callable[[], Any], interval: float, name: str) -> None:
        self._task = task
        self._interval = interval
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"authsvc-{name}", daemon=True)

    def start(self) -> None:
        """Starts the timer; the first round runs one interval from now."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the timer, after the round in progress if any."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._task()
            except Exception:  # retried next interval
                log.warning("%s failed", self._name, exc_info=True)
