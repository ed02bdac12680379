"""The replica's one ``LISTEN`` connection, shared by everything woken by PostgreSQL.

Three parts of a replica learn from ``NOTIFY`` that the database changed: the validation
cache (``storage.invalidation``, channel ``authsvc_invalidate``), the account event
streams (``storage.event_wakeups``, ``authsvc_events``) and the revocation feed
(``storage.revocation_feed``, ``authsvc_revocations``). Each subscribes to its channel
on the one ``Listener`` of the process, which holds a dedicated connection in a daemon
thread, ``LISTEN``s on every subscribed channel and hands each subscriber the payloads
of its channel.

Notices sent while the connection is down are lost, so each subscriber also hears when
it goes deaf (the connection failed) and when it listens again: then it must assume it
missed notices and read the truth again (the cache starts empty, the streams and the
feed read their tables). The listener reconnects with a growing backoff.

SQLite has no notifications: there is no listener, and the subscribers poll.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

from authsvc.storage.engine import psycopg2_connect_args

log = logging.getLogger(__name__)

#: Waits between reconnection attempts, then the last one repeats (seconds).
RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
#: The connection's name in ``pg_stat_activity``.
APPLICATION_NAME = "authsvc-listener"


def _ignore() -> None:
    pass


@dataclass(frozen=True)
class Subscription:
    """What one subscriber of a channel is told, each from the listener's thread.

    ``notified``: the payloads of the notices that arrived together, in order.
    ``listening``: ``LISTEN`` is in place (at start and after every reconnection);
    notices may have been missed before.
    ``deaf``: the connection failed; notices are missed until ``listening`` again.
    """

    channel: str
    notified: Callable[[Sequence[str]], None]
    listening: Callable[[], None] = _ignore
    deaf: Callable[[], None] = _ignore


class Listener:
    """One ``LISTEN`` connection for every channel subscribed (PostgreSQL only).

    Subscribe before ``start``. ``listening`` is set once every subscriber has been told
    it listens, and cleared (before any is told it is deaf) when the connection fails.
    """

    def __init__(self, database_url: str) -> None:
        self._args = psycopg2_connect_args(database_url)
        self._args.update(
            application_name=APPLICATION_NAME,
            # Notice a silently dead link in seconds rather than hours.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        self._subscriptions: dict[str, list[Subscription]] = defaultdict(list)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # wakes the select() at stop
        self.listening = threading.Event()
        #: The server process of the connection while listening (for tests and logs).
        self.backend_pid: int | None = None
        #: How many times a listening connection failed (not counting ``stop``).
        self.drops = 0
        self._thread = threading.Thread(target=self._run, name="authsvc-listener", daemon=True)

    def subscribe(self, subscription: Subscription) -> None:
        """Adds a subscriber. Raises RuntimeError once started (its LISTEN would be missing)."""
        if self._thread.ident is not None:
            raise RuntimeError("subscribe before the listener starts")
        self._subscriptions[subscription.channel].append(subscription)

    def start(self) -> None:
        """Starts listening in a daemon thread (connecting in the background)."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread and closes its connection."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else the (daemon) thread may still select on them
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _every(self) -> list[Subscription]:
        return [s for subscribed in self._subscriptions.values() for s in subscribed]

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except psycopg2.Error as exc:
                log.warning("listener cannot connect: %s", type(exc).__name__)
            else:
                attempt = 0
                self._listen(conn)
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            self._stop.wait(delay)

    def _connect(self) -> psycopg2.extensions.connection:
        conn: psycopg2.extensions.connection = psycopg2.connect(**self._args)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for channel in sorted(self._subscriptions):
                    cur.execute(f"LISTEN {channel}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _listen(self, conn: psycopg2.extensions.connection) -> None:
        try:
            self.backend_pid = conn.get_backend_pid()
            for subscription in self._every():
                subscription.listening()
            self.listening.set()
            log.info("listener connected (%s)", ", ".join(sorted(self._subscriptions)))
            while not self._stop.is_set():
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
                if self._wake_r not in ready:
                    self._drain(conn)
        except (psycopg2.Error, OSError, ValueError) as exc:
            log.warning("listener lost its connection: %s", type(exc).__name__)
        except Exception:  # a subscriber failed: start again, as after a lost connection
            log.exception("listener subscriber failed")
        finally:
            self._deafen(conn)

    def _deafen(self, conn: psycopg2.extensions.connection) -> None:
        self.listening.clear()
        for subscription in self._every():
            try:
                subscription.deaf()
            except Exception:
                log.exception("listener subscriber failed")
        conn.close()
        if not self._stop.is_set():
            self.drops += 1

    def _drain(self, conn: psycopg2.extensions.connection) -> None:
        conn.poll()
        arrived: dict[str, list[str]] = defaultdict(list)
        while conn.notifies:
            notice = conn.notifies.pop(0)
            arrived[notice.channel].append(notice.payload)
        for channel, payloads in arrived.items():
            for subscription in self._subscriptions.get(channel, ()):
                subscription.notified(payloads)
