"""The baseline: AuthService whose ValidateToken does no I/O, on authsvc's grpcio setup.

Same ``grpc.server`` as ``authsvc.server.create_server``: a thread pool of
``AUTHSVC_MAX_WORKERS`` threads, the error interceptor, the same options, health and
reflection. ValidateToken reads the request and builds a response of the real shape
(user and session with timestamps); it never touches a database.

Run as ``python -m bench.empty_server --port N [--max-workers 16]``; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc.config import Settings
from authsvc.interceptors import ErrorInterceptor
from authsvc.server import MAX_MESSAGE_BYTES
from authsvc.v1 import auth_service_pb2 as pb
from authsvc.v1 import auth_service_pb2_grpc as pb_grpc

_USER_ID = "00000000-0000-4000-8000-000000000001"
_SESSION_ID = "00000000-0000-4000-8000-000000000002"


class EmptyAuthServicer(pb_grpc.AuthServiceServicer):
    """ValidateToken without storage: parse, build, return."""

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


def serve(port: int, max_workers: int) -> None:
    """Serves on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_AuthServiceServicer_to_server(EmptyAuthServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        pb.DESCRIPTOR.services_by_name["AuthService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stopping.wait()
    server.stop(1).wait()


def main() -> None:
    """Parses the command line and serves."""
    parser = argparse.ArgumentParser(prog="python -m bench.empty_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-workers", type=int, default=Settings.max_workers)
    args = parser.parse_args()
    serve(args.port, args.max_workers)


if __name__ == "__main__":
    main()
