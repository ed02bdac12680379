"""Password hashing (Werkzeug) on low-priority threads, within the replica's capacity.

Hashing releases the GIL, so several run in parallel on threads. Only a call holding one
of the replica's slots (``HashCapacity``, shared by every worker process) hashes: the
bound keeps memory in check (scrypt at N=32768, r=8 takes 32 MiB per hash) and leaves
CPU to the hot path, while one worker may use every slot (a caller's channel lands on
one worker). A wait for a slot lasts until the call's deadline; only a call without
one falls back to a fixed queue timeout.

Imported users keep their old system's hash (bcrypt, argon2, Django; see
``rules.imported_hashes``) until their first sign-in: it is checked on the same slots,
and a check that was cheaper than one of the current method is padded (by sleeping,
after the slot is given back) to the current method's time, so neither an unknown email
(the dummy hash) nor a not yet re-hashed account stands out by answering faster.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from werkzeug.security import generate_password_hash

from authsvc import deadlines
from authsvc.errors import DeadlineExceeded, Overloaded
from authsvc.rules import imported_hashes
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.passwords import MAX_LENGTH, dummy_hash, hash_seconds, method_of, normalize

# How much nicer than the gRPC handler threads the hashing threads run. A sign-in storm
# then takes the CPU only when ValidateToken (the hot path) leaves it idle: its p99 stays
# low while sign-ins still use every spare cycle.
HASH_THREAD_NICENESS = 10


def _lower_priority() -> None:
    # Linux schedules threads as tasks, so this renices only the calling pool thread.
    # Raising one's own niceness needs no privilege.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


class Hasher:
    """Hashes and verifies passwords with one Werkzeug method, within ``capacity``.

    The hashes run on this process's low-priority threads, as many as the replica has
    slots, so a worker that holds every slot hashes on every core.
    """

    def __init__(
        self, method: str, capacity: HashCapacity, queue_timeout: float | None = 5.0
    ) -> None:
        self._method = method
        self.capacity = capacity
        self._queue_timeout = queue_timeout
        self._pool = ThreadPoolExecutor(capacity.slots, "hash", initializer=_lower_priority)
        self._turns = threading.Semaphore(capacity.slots)
        # Hashing once tells the full method string Werkzeug records (defaults filled in).
        self._dummy = dummy_hash(method)
        self.method = method_of(self._dummy)
        self._check_time = hash_seconds(method)

    def hash(self, password: str) -> str:
        """The stored form of ``password``.

        Raises Overloaded when the replica's queue is full (at once) or, for a call
        without a deadline, when no slot frees within the queue timeout;
        DeadlineExceeded when the call's deadline passes before it gets a slot.
        """
        with self._slot():
            done = self._pool.submit(generate_password_hash, normalize(password), self._method)
            return done.result()

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Checks ``password``; with no hash (unknown user) checks a dummy so timing matches.

        A password longer than any ever accepted is wrong without hashing. Raises
        like ``hash`` when no slot is to be had.
        """
        if len(password) > MAX_LENGTH:
            return False
        with self._slot():
            stored = password_hash or self._dummy
            ok, shortfall = self._pool.submit(self._check, stored, password).result()
        time.sleep(shortfall)  # slot given back: padding takes no capacity
        return ok and password_hash is not None

    def _check(self, stored: str, password: str) -> tuple[bool, float]:
        """Checks any accepted format; for a foreign one, also how long to pad."""
        if imported_hashes.is_werkzeug(stored):
            return imported_hashes.check(stored, password), 0.0
        started = time.perf_counter()
        ok = imported_hashes.check(stored, password)
        return ok, max(0.0, self._check_time - (time.perf_counter() - started))

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """A turn to do the work that comes before a password check (reads, throttling).

        At most ``slots`` calls of this process prepare at once; the others wait here,
        blocked rather than running, until the call's deadline (or, without one, the
        queue timeout): DeadlineExceeded or Overloaded. A burst of sign-ins arriving
        together (one caller's channel lands on one worker) would otherwise run all its
        reads and throttle writes at once: dozens of threads trading the GIL and opening
        pool connections, stalling ValidateToken in the same process, for checks that
        run ``slots`` at a time anyway. Preparing takes milliseconds and a hash hundreds,
        so the next checks are always ready before a slot frees.
        """
        self._wait_for(lambda wait: self._turns.acquire(timeout=wait))
        try:
            yield
        finally:
            self._turns.release()

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with another method than the current one
        (always for an imported bcrypt, argon2 or Django hash)."""
        if not imported_hashes.is_werkzeug(password_hash):
            return True
        return method_of(password_hash) != self.method

    def close(self) -> None:
        """Stops the hashing threads (after the hashes in progress)."""
        self._pool.shutdown(wait=True)

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """Holds a place in the replica's queue, then one of its slots."""
        deadlines.wait_limit_or(self._queue_timeout)  # already past: not even queued
        if not self.capacity.admit():
            raise Overloaded()  # the queue is full: waiting would pile up calls
        try:
            self._wait_for(self.capacity.take_slot)
            try:
                if deadlines.remaining() == 0:
                    raise DeadlineExceeded()  # granted as the caller gave up: no hash
                yield
            finally:
                self.capacity.give_slot()
        finally:
            self.capacity.leave()

    def _wait_for(self, acquire: Callable[[float | None], bool]) -> None:
        """Runs ``acquire(limit)``: until the call's deadline, or the queue timeout without
        one. Raises DeadlineExceeded or Overloaded when it gives up."""
        wait, by_deadline = deadlines.wait_limit_or(self._queue_timeout)
        if not acquire(wait):
            raise DeadlineExceeded() if by_deadline else Overloaded()
