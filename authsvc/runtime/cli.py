"""``authsvc serve | migrate | health | purge``: the command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.rules.hash_capacity import HashCapacity
from authsvc.runtime import tls, workers
from authsvc.runtime.assembly import create_server, make_hash_capacity, retention
from authsvc.runtime.logs import configure_logging
from authsvc.runtime.settings import ConfigError, Settings, flags, load_settings
from authsvc.storage import migrate, purge
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.models import utcnow

log = logging.getLogger("authsvc")


_COMMANDS = {
    "serve": "migrate the schema, then serve gRPC",
    "migrate": "upgrade the database schema and exit",
    "health": "exit 0 when a server reports SERVING",
    "purge": "delete expired sessions in batches, audit events past AUTHSVC_AUDIT_RETENTION "
    "and stale throttling state, and exit",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authsvc", description="gRPC authentication service")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, summary in _COMMANDS.items():
        cmd = sub.add_parser(command, help=summary)
        for name, flag, spec in flags(command):
            cmd.add_argument(flag, dest=name, help=f"{spec.doc} ({spec.env})")
    health = sub.choices["health"]
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a subcommand; a bad setting is a one-line error and exit status 2."""
    args = _parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name, _, _ in flags(args.command)}
    try:
        settings = load_settings(overrides=overrides)
    except ConfigError as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    commands = {"serve": serve, "migrate": run_migrate, "health": check_health, "purge": run_purge}
    return commands[args.command](settings, args)


def run_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Upgrades the schema to the newest revision."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def run_purge(settings: Settings, _args: argparse.Namespace) -> int:
    """Deletes the expired sessions, a batch per transaction, then old audit events and
    stale throttling state, and prints how many."""
    db = Database(make_engine(settings.database_url))
    try:
        done = purge.purge_all(db, utcnow, retention(settings))
    except Exception as exc:  # report, don't dump a traceback at the operator
        print(f"authsvc: purge failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(f"purged {done.sessions} expired sessions")
    print(f"purged {done.audit_events} audit events and {done.throttle_rows} throttling rows")
    return 0


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Migrates once, then serves (in ``worker_count`` processes) until SIGTERM/SIGINT.

    Draining lets calls in flight finish; the exit status is then 0.
    """
    if (status := run_migrate(settings, args)) != 0:
        return status
    if settings.worker_count == 1:
        return serve_process(settings)
    # Made before the fork, so every worker shares the replica's hash slots.
    capacity = make_hash_capacity(settings, processes=settings.worker_count)

    def run_worker(worker_settings: Settings, slot: int) -> int:
        return serve_process(worker_settings, worker=True, capacity=capacity.for_process(slot))

    try:
        return workers.serve_workers(settings, run_worker, on_exit=capacity.reclaim)
    except RuntimeError as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 1


def serve_process(
    settings: Settings, *, worker: bool = False, capacity: HashCapacity | None = None
) -> int:
    """Serves in this process until SIGTERM/SIGINT, then drains calls in flight.

    ``capacity``: the replica's hash slots when this is one of its workers.
    """
    try:
        server, port = create_server(settings, worker=worker, hash_capacity=capacity)
    except RuntimeError as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: draining", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not worker:
        log.info("authsvc listening on %s (port %d)", settings.address, port)
    stopping.wait()
    server.stop(settings.grace_period.total_seconds())
    log.info("stopped")
    return 0


def check_health(settings: Settings, args: argparse.Namespace) -> int:
    """Exits 0 when the server at ``--address`` answers SERVING, 1 otherwise.

    Speaks TLS when a CA or certificate is set (see ``authsvc.tls.open_channel``).
    """
    try:
        with tls.open_channel(settings, settings.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"authsvc: health check failed: {exc.code().name}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
