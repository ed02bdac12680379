"""The purge timer inside ``serve``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class PurgeTimer:
    """Runs ``purge`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, purge: Callable[[], Any], interval: float) -> None:
        self._purge = purge
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authsvc-purge", daemon=True)

    def start(self) -> None:
        """Starts the timer; the first purge runs one interval from now."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the timer (a purge in progress finishes its batch first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._purge()
            except Exception:  # a failed round (database down) is retried next interval
                log.warning("purging failed", exc_info=True)
