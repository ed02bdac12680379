"""The password-hash capacity of a replica: slots and a bounded queue, shared by its processes.

``authsvc serve --workers N`` pre-forks N processes, and a caller's channel (one HTTP/2
connection) lands on one of them. So that one caller's burst can use every core, the
slots belong to the replica, not to a worker: they are POSIX semaphores in shared memory
(multiprocessing's fork context, so ``/dev/shm`` must be writable, as it is in
containers), made before the fork and inherited by every worker.
A worker holding every slot hashes on all the cores through its own pool of threads.

A second semaphore admits at most ``slots + queue_length`` calls (hashing or waiting) at
once across the replica: beyond that a call is refused at once, so a flood queues
neither memory nor threads without bound.

A worker killed while it held slots (SIGKILL, the OOM killer) cannot give them back. So
each process also counts what it holds in shared memory, one lane per worker, and the
supervisor returns a dead worker's holdings (``reclaim``) before starting its
replacement. The count changes right after each acquire and right before each release,
so only a kill between the two (microseconds) can lose a slot.
"""

from __future__ import annotations

import copy
import mmap
import multiprocessing
import threading

_FORK = multiprocessing.get_context("fork")
_ADMITTED, _HASHING = 0, 1  # the two counters of each lane


class HashCapacity:
    """``slots`` hashes at once and ``queue_length`` more calls waiting, per replica.

    Made once per replica (before any fork) with a lane per worker process; each
    worker uses ``for_process(lane)``. A single-process server makes its own.
    """

    def __init__(self, slots: int, queue_length: int, processes: int = 1) -> None:
        if slots < 1 or queue_length < 0 or processes < 1:
            raise ValueError("need at least one slot and one process, and no negative queue")
        self.slots = slots
        self.queue_length = queue_length
        self._semaphores = (_FORK.Semaphore(slots + queue_length), _FORK.Semaphore(slots))
        # An anonymous shared mapping (no file): lane → (admitted, hashing) as C ints.
        self._held = memoryview(mmap.mmap(-1, 2 * processes * 4)).cast("i")
        self._lane = 0
        self._lock = threading.Lock()

    def for_process(self, lane: int) -> HashCapacity:
        """The same capacity as used by worker process ``lane`` (0, 1, ...)."""
        if not 0 <= lane < len(self._held) // 2:
            raise ValueError(f"no lane {lane}")
        mine = copy.copy(self)
        mine._lane = lane
        mine._lock = threading.Lock()
        return mine

    def admit(self) -> bool:
        """Takes a place in the replica's queue; False (at once) when it is full."""
        return self._acquire(_ADMITTED, 0.0)

    def leave(self) -> None:
        """Gives back the place ``admit`` took."""
        self._release(_ADMITTED)

    def take_slot(self, timeout: float | None) -> bool:
        """Waits up to ``timeout`` seconds (None: no limit) for a slot; True once held."""
        return self._acquire(_HASHING, timeout)

    def give_slot(self) -> None:
        """Gives back the slot ``take_slot`` took."""
        self._release(_HASHING)

    def admitted(self) -> int:
        """Calls in the replica's queue now (hashing or waiting for a slot)."""
        return self.slots + self.queue_length - int(self._semaphores[_ADMITTED].get_value())

    def reclaim(self, lane: int) -> None:
        """Returns what the (dead) process of ``lane`` held; the supervisor calls this."""
        for counter in (_ADMITTED, _HASHING):
            index = 2 * lane + counter
            held, self._held[index] = self._held[index], 0
            for _ in range(held):
                self._semaphores[counter].release()

    def _acquire(self, counter: int, timeout: float | None) -> bool:
        if not self._semaphores[counter].acquire(True, timeout):
            return False
        with self._lock:
            self._held[2 * self._lane + counter] += 1
        return True

    def _release(self, counter: int) -> None:
        with self._lock:
            self._held[2 * self._lane + counter] -= 1
        self._semaphores[counter].release()
