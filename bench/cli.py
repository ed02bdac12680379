"""``python -m bench``: runs the scenarios in one go and prints the markdown table."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from werkzeug.security import check_password_hash

from authsvc.runtime.settings import Settings
from bench import population, report
from bench.burst import BurstResult, run_burst
from bench.load import VALIDATE, KindResult, Target, Window, run_clients
from bench.procstat import CpuMeter
from bench.scenarios import LARGE, Load, Scenario, all_scenarios
from bench.servers import authsvc_server, empty_server

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Outcome:
    """What one scenario measured."""

    scenario: Scenario
    duration: float
    kinds: dict[str, KindResult]
    cpu_seconds: float
    server_processes: int
    db_backends: int
    burst: BurstResult | None = None
    # A burst's yardstick: hashes/s of ``cores`` bare threads, measured just before it.
    parallel_rate: float | None = None

    @property
    def calls(self) -> int:
        """Calls of every kind in the window."""
        return sum(k.calls for k in self.kinds.values())

    @property
    def cpu_per_call(self) -> float:
        """Server plus database CPU seconds per call."""
        return self.cpu_seconds / self.calls if self.calls else float("nan")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a small, short smoke run (~1 minute)")
    p.add_argument("--duration", type=float, help="measured seconds per scenario (default 15)")
    p.add_argument("--warmup", type=float, help="discarded seconds before each (default 3)")
    p.add_argument("--scenarios", help="comma-separated names to run (baselines always run)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--in-flight", type=int, default=16, help="calls in flight, closed loop")
    p.add_argument(
        "--paced-rate", type=float, default=100.0, help="ValidateToken/s beside the storm"
    )
    p.add_argument("--sign-in-in-flight", type=int, help="sign-ins in flight (default 2 x cores)")
    p.add_argument(
        "--burst-calls", type=int, default=50, help="sign-ups, then sign-ins, of each burst"
    )
    p.add_argument(
        "--mix-rate", type=float, help="calls/s of the 95/5 mix (default: 10 x raw hash rate)"
    )
    p.add_argument(
        "--cache-size", type=int, default=100_000, help="AUTHSVC_VALIDATION_CACHE when on"
    )
    p.add_argument("--small", type=int, help="sessions in the small population (default 10^3)")
    p.add_argument("--large", type=int, help="sessions in the large population (default 10^6)")
    p.add_argument("--users", type=int, default=1000, help="users the sessions belong to")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="AUTHSVC_NAME=VALUE",
        help="a setting for every authsvc server (repeatable; a scenario's own settings win)",
    )
    p.add_argument(
        "--dsn", default=DEFAULT_DSN, help="maintenance database of the PostgreSQL server"
    )
    p.add_argument("--output", help="also write the report (markdown) to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; exit status 0 even when targets fail (the table says so)."""
    args = _parser().parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (3.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.small = args.small or 1000
    args.large = args.large or (20_000 if quick else 1_000_000)
    cores = len(os.sched_getaffinity(0))
    load = Load(
        args.in_flight,
        args.paced_rate,
        args.sign_in_in_flight or 2 * cores,
        args.cache_size,
        args.burst_calls,
    )
    scenarios = all_scenarios(load, args.small, args.large)
    if args.list:
        for s in scenarios:
            print(f"{s.name:22} {s.label}")
        return 0
    chosen = [_with_settings(s, _settings(args.set)) for s in _choose(scenarios, args.scenarios)]
    started = time.monotonic()
    outcomes, hash_rate = _run_all(args, chosen, cores)
    text = report.render(
        outcomes, hash_rate, cores, _command(argv), time.monotonic() - started, args.dsn
    )
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    if len(settings) != len(pairs) or not all(k.startswith("AUTHSVC_") for k in settings):
        raise SystemExit("--set takes AUTHSVC_NAME=VALUE")
    return settings


def _with_settings(scenario: Scenario, settings: dict[str, str]) -> Scenario:
    if scenario.server == "empty" or not settings:
        return scenario
    return dataclasses.replace(scenario, settings=settings | scenario.settings)


def _choose(scenarios: list[Scenario], names: str | None) -> list[Scenario]:
    if not names:
        return scenarios
    wanted = {n.strip() for n in names.split(",")} | {"baseline", "baseline-end"}
    unknown = wanted - {s.name for s in scenarios}
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))} (see --list)")
    return [s for s in scenarios if s.name in wanted]


def _run_all(
    args: argparse.Namespace, chosen: list[Scenario], cores: int
) -> tuple[list[Outcome], report.HashRate | None]:
    method = Settings.password_hash
    stored = population.password_hash(method)
    outcomes: list[Outcome] = []
    hash_rate = None
    with population.fresh_database(args.dsn) as db:
        _log(f"database {db.name}: adding {args.users} users and {args.small} sessions")
        population.add_users(db, min(args.users, args.small), stored)
        population.add_sessions(db, args.small)
        for scenario in chosen:
            if scenario.size == LARGE and db.sessions < args.large:
                t0 = time.monotonic()
                population.add_sessions(db, args.large)
                _log(f"grew to {db.sessions} sessions in {time.monotonic() - t0:.1f}s")
            hashes = scenario.name in ("storm", "mix") or scenario.burst is not None
            if hashes and hash_rate is None:
                hash_rate = _measure_hash_rate(method, stored, cores, 3 if args.quick else 8)
            if scenario.name == "mix":
                assert hash_rate is not None
                scenario = _paced_mix(scenario, args.mix_rate or 10 * hash_rate.per_second)
            sessions = db.sessions if scenario.size == LARGE else args.small
            if scenario.burst is not None:
                assert hash_rate is not None
                # The yardstick of 5b again, in the conditions of this very burst (the
                # database may still be vacuuming what the scenario before it wrote).
                parallel = _parallel_hash_rate(stored, cores, 3 if args.quick else 6)
                _log(f"raw parallel hash rate before {scenario.name}: {parallel:.1f}/s")
                outcome = _run_burst(args, scenario, db, sessions, hash_rate)
                outcomes.append(dataclasses.replace(outcome, parallel_rate=parallel))
            else:
                outcomes.append(_run(args, scenario, db, sessions))
    return outcomes, hash_rate


def _run(
    args: argparse.Namespace, scenario: Scenario, db: population.BenchDatabase, sessions: int
) -> Outcome:
    _log(f"running {scenario.name}: {scenario.label}")
    server = (
        empty_server() if scenario.server == "empty" else authsvc_server(db.url, scenario.settings)
    )
    with server as running:
        target = Target(running.address, db.tokens, sessions, db.users)
        meter = CpuMeter(running.pid, args.dsn, None if scenario.server == "empty" else db.name)
        cpu: list[float] = []

        def measure(window: Window) -> None:
            time.sleep(max(0.0, window.measure - time.time()))
            meter.start()
            time.sleep(max(0.0, window.end - time.time()))
            cpu.append(meter.stop())

        kinds = run_clients(
            target, list(scenario.streams), args.clients, args.warmup, args.duration, measure
        )
    kinds = {k: v for k, v in kinds.items() if v.calls}
    outcome = Outcome(
        scenario, args.duration, kinds, cpu[0], meter.server_processes, len(meter.backends_seen)
    )
    rate, cpu_ms = outcome.calls / args.duration, outcome.cpu_per_call * 1000
    _log(f"  {rate:.0f} calls/s, {cpu_ms:.3f} ms CPU/call")
    return outcome


def _run_burst(
    args: argparse.Namespace,
    scenario: Scenario,
    db: population.BenchDatabase,
    sessions: int,
    hash_rate: report.HashRate,
) -> Outcome:
    """The burst, issued once the streams beside it run; they are measured while it lasts.

    The streams' window is twice the time the burst should take at the raw parallel
    hash rate (so it outlasts the burst); only calls started during the burst count.
    """
    assert scenario.burst is not None
    _log(f"running {scenario.name}: {scenario.label}")
    expected = 2 * scenario.burst.calls / hash_rate.parallel
    duration = max(args.duration, 2 * expected + 5)
    with authsvc_server(db.url, scenario.settings) as running:
        target = Target(running.address, db.tokens, sessions, db.users)
        meter = CpuMeter(running.pid, args.dsn, db.name)
        bursts: list[tuple[BurstResult, float]] = []

        def measure(window: Window) -> None:
            time.sleep(max(0.0, window.measure - time.time()))
            meter.start()
            assert scenario.burst is not None
            burst = run_burst(running.address, scenario.burst)
            bursts.append((burst, meter.stop()))
            if burst.ended > window.end:
                _log("  the burst outlasted the streams beside it")
            time.sleep(max(0.0, window.end - time.time()))

        streams = list(scenario.streams)
        if streams:
            kinds = run_clients(target, streams, args.clients, args.warmup, duration, measure)
        else:  # the burst alone: no client processes either
            now = time.time()
            measure(Window(now, now, now))
            kinds = {}
    burst, cpu = bursts[0]
    if VALIDATE in kinds:
        kinds = {VALIDATE: kinds[VALIDATE].started_between(burst.started, burst.ended)}
    kinds |= {kind: phase.result for kind, phase in burst.phases.items()}
    outcome = Outcome(
        scenario,
        burst.ended - burst.started,
        kinds,
        cpu,
        meter.server_processes,
        len(meter.backends_seen),
        burst,
    )
    seconds = ", ".join(f"{k} {p.seconds:.1f}s" for k, p in burst.phases.items())
    _log(f"  burst: {seconds}; {outcome.cpu_per_call * 1000:.3f} ms CPU/call")
    return outcome


def _paced_mix(scenario: Scenario, rate: float) -> Scenario:
    """The mix at a fixed rate: closed-loop slots would all end up waiting on sign-ins.

    By default 10 x the raw hash rate, so its 5% of sign-ins want half the hash capacity.
    """
    streams = tuple(dataclasses.replace(s, rate=rate) for s in scenario.streams)
    label = f"{scenario.label} at {rate:.0f} calls/s"
    return dataclasses.replace(scenario, streams=streams, label=label)


def _measure_hash_rate(method: str, stored: str, cores: int, samples: int) -> report.HashRate:
    """Seconds per verification of the default hash with Werkzeug directly.

    One at a time (the raw rate is cores / that), then ``cores`` threads at once
    (hashlib's scrypt releases the GIL), to show what the shared machine really gives.
    """

    def verify() -> None:
        check_password_hash(stored, population.PASSWORD)

    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        verify()
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    parallel = _parallel_hash_rate(stored, cores, 4)
    rate = cores / seconds
    _log(f"raw hash: {seconds * 1000:.1f} ms per {method} hash, {rate:.1f}/s on {cores} cores")
    return report.HashRate(method, seconds, cores, parallel)


def _parallel_hash_rate(stored: str, cores: int, per_thread: int) -> float:
    """Hashes/s of ``cores`` threads verifying ``stored`` at once, ``per_thread`` each
    (hashlib's scrypt releases the GIL)."""

    def verify() -> None:
        check_password_hash(stored, population.PASSWORD)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        for future in [pool.submit(verify) for _ in range(cores * per_thread)]:
            future.result()
    return cores * per_thread / (time.perf_counter() - t0)


def _command(argv: Sequence[str] | None) -> str:
    words = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", "-m", "bench", *words])


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
