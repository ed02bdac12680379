"""The hash capacity belongs to the replica: every forked worker shares its slots and queue."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable

import pytest

from authsvc.rules.hash_capacity import HashCapacity

FORK = multiprocessing.get_context("fork")


def in_a_forked_worker(capacity: HashCapacity, lane: int, work: Callable[[HashCapacity], None]):
    """Runs ``work`` on ``capacity`` in a forked process (a worker of lane ``lane``).

    Returns (done, process) once ``work`` returned; setting ``done`` lets the process
    exit (without giving back anything ``work`` kept).
    """
    held, done = FORK.Event(), FORK.Event()

    def worker() -> None:
        mine = capacity.for_process(lane)
        work(mine)
        held.set()
        done.wait(30)
        os._exit(0)

    process = FORK.Process(target=worker)
    process.start()
    assert held.wait(30), "the worker did not start"
    return done, process


def take_every_slot(capacity: HashCapacity) -> None:
    while capacity.take_slot(0):
        pass


def test_one_worker_may_hold_every_slot_of_the_replica_and_the_others_then_wait():
    capacity = HashCapacity(2, 0, processes=2)
    _, process = in_a_forked_worker(capacity, 1, take_every_slot)
    here = capacity.for_process(0)
    assert not here.take_slot(0), "the other worker holds both slots"
    os.kill(process.pid, 9)  # dies holding them
    process.join(30)
    capacity.reclaim(1)  # what the supervisor does before starting a replacement
    assert here.take_slot(0) and here.take_slot(0)
    assert not here.take_slot(0)


def test_slots_given_back_in_one_worker_are_taken_in_another():
    capacity = HashCapacity(2, 0, processes=2)

    def hold_and_give_back(mine: HashCapacity) -> None:
        assert mine.take_slot(0) and mine.take_slot(0)
        mine.give_slot()
        mine.give_slot()

    done, process = in_a_forked_worker(capacity, 1, hold_and_give_back)
    done.set()
    process.join(30)
    here = capacity.for_process(0)
    assert here.take_slot(0) and here.take_slot(0)


def test_the_queue_length_bounds_the_whole_replica():
    capacity = HashCapacity(1, 2, processes=2)

    def fill_the_queue(mine: HashCapacity) -> None:
        while mine.admit():
            pass

    _, process = in_a_forked_worker(capacity, 1, fill_the_queue)
    here = capacity.for_process(0)
    assert not here.admit(), "1 slot + 2 waiting, all admitted in the other worker"
    os.kill(process.pid, 9)
    process.join(30)
    capacity.reclaim(1)
    assert [here.admit() for _ in range(4)] == [True, True, True, False]


def test_a_capacity_needs_a_slot_and_knows_its_lanes():
    with pytest.raises(ValueError):
        HashCapacity(0, 1)
    with pytest.raises(ValueError):
        HashCapacity(1, 1, processes=2).for_process(2)
