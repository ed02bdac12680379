"""The baseline: authsvc's own server, with a ValidateToken that does no I/O.

The server is built by ``authsvc.runtime.assembly.create_server`` itself, with logging
configured from the settings, so the thread pool, interceptors, logging, options, health
and reflection are exactly those of ``authsvc serve``
in this build; only the AuthService servicer is swapped for one whose ValidateToken
reads the request and builds a response of the real shape (user and session with
timestamps), without touching a database. The database behind the rest of the server
(health pings every few seconds) is a throwaway SQLite file.

Run as ``python -m bench.empty_server --port N``; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from authsvc.runtime import assembly as authsvc_server
from authsvc.runtime.logs import configure_logging
from authsvc.runtime.settings import load_settings
from authsvc.storage import migrate
from authsvc.storage.engine import make_engine
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

_USER_ID = "00000000-0000-4000-8000-000000000001"
_SESSION_ID = "00000000-0000-4000-8000-000000000002"


class EmptyAuthServicer(pb_grpc.AuthServiceServicer):
    """ValidateToken without storage: parse, build, return. Other RPCs are UNIMPLEMENTED."""

    instances = 0

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        EmptyAuthServicer.instances += 1

    def ValidateToken(
        self, request: pb.ValidateTokenRequest, context: grpc.ServicerContext
    ) -> pb.ValidateTokenResponse:
        created = Timestamp(seconds=1_800_000_000)
        expires = Timestamp(seconds=1_800_003_600 + len(request.session_token))
        user = pb.User(
            id=_USER_ID,
            email="user@bench.example",
            first_name="Bench",
            last_name="User",
            create_time=created,
            update_time=created,
        )
        session = pb.Session(
            id=_SESSION_ID,
            user_id=_USER_ID,
            create_time=created,
            expire_time=expires,
            refresh_expire_time=expires,
            user_agent="authsvc-bench",
            ip_address="127.0.0.1",
        )
        return pb.ValidateTokenResponse(user=user, session=session)


def serve(port: int) -> None:
    """Serves on 127.0.0.1:``port`` until SIGTERM or SIGINT.

    Settings come from the AUTHSVC_* environment like ``authsvc serve``'s (so
    AUTHSVC_RPC_THREADS sizes the same thread pool), except the address and database.
    """
    with tempfile.TemporaryDirectory(prefix="authsvc-bench-empty-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'empty.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        overrides = {"address": f"127.0.0.1:{port}", "database_url": url}
        settings = load_settings(overrides=overrides)
        configure_logging(settings.log_level, settings.log_format)  # as `authsvc serve` does
        # Swap the servicer create_server registers; checked below, so a build that
        # registers it another way fails loudly instead of benchmarking the real one.
        server, _ = authsvc_server.create_server(settings, servicer=EmptyAuthServicer)
        if EmptyAuthServicer.instances != 1:
            server.stop(0)
            raise SystemExit("bench.empty_server: could not swap in the empty servicer")
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        stopping.wait()
        server.stop(1)


def main() -> None:
    """Parses the command line and serves."""
    parser = argparse.ArgumentParser(prog="python -m bench.empty_server")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
