"""Why ``authsvc health`` could not reach a server, in words an operator can act on.

gRPC reports every transport failure as UNAVAILABLE with a technical message; a server
that wants TLS, or a client certificate, simply closes the connection ("Socket closed").
The explanation combines that message with what this client sent (plaintext, TLS, a
certificate or not) and, for plaintext, a TLS handshake of our own to see whether the
server speaks TLS.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from authsvc.runtime.settings import Settings
from authsvc.setting_names import (
    AUTHSVC_TLS_CA,
    AUTHSVC_TLS_CERT,
    AUTHSVC_TLS_CLIENT_CA,
    AUTHSVC_TLS_KEY,
    AUTHSVC_TLS_SERVER_NAME,
)

# Fragments of gRPC's messages (BoringSSL reason names and core's own words).
_EXPLAINED = (
    ("Connection refused", "connection refused: nothing listens at {address}"),
    (
        "WRONG_VERSION_NUMBER",
        "the server at {address} speaks plaintext, but TLS was asked for "
        f"({AUTHSVC_TLS_CA} / {AUTHSVC_TLS_CERT} are set): unset them, or serve with TLS",
    ),
    (
        "CERTIFICATE_VERIFY_FAILED",
        f"the server's certificate is not signed by the CA in {AUTHSVC_TLS_CA} ({{ca}})",
    ),
    (
        "Hostname Verification",
        f"the server's certificate does not name {{name}}: set {AUTHSVC_TLS_SERVER_NAME}",
    ),
)


@contextmanager
def quiet_grpc_core() -> Iterator[None]:
    """Keeps gRPC's C core from writing its own log lines (``Handshake failed with error
    SSL_ERROR_SSL ...``) to file descriptor 2 while the check runs: ``explain`` says what
    went wrong in one line of its own. Python's ``sys.stderr`` is untouched."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def explain(settings: Settings, error: grpc.RpcError, timeout: float) -> str:
    """One line saying why the health call to ``settings.address`` failed."""
    code: grpc.StatusCode = error.code()
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from {settings.address} within {timeout:g}s (timeout)"
    details = error.details() or ""
    for fragment, text in _EXPLAINED:
        if fragment in details:
            return text.format(
                address=settings.address,
                ca=settings.tls_ca or "system roots",
                name=settings.tls_server_name or settings.address.rpartition(":")[0],
            )
    if code is grpc.StatusCode.UNAVAILABLE and "Socket closed" in details:
        return _closed(settings, timeout)
    return f"{code.name}: {details}"


def _closed(settings: Settings, timeout: float) -> str:
    """Why a server closed the connection during set-up, from what this client sent."""
    tls = bool(settings.tls_ca or settings.tls_cert)
    if not tls and speaks_tls(settings.address, timeout):
        return (
            f"the server at {settings.address} expects TLS, but this check spoke plaintext: "
            f"set {AUTHSVC_TLS_CA} (--tls-ca), and a client certificate if it requires one"
        )
    if tls and not settings.tls_cert:
        return (
            f"the server at {settings.address} closed the TLS connection: it requires a "
            f"client certificate (mutual TLS): set {AUTHSVC_TLS_CERT} and {AUTHSVC_TLS_KEY}"
        )
    if tls:
        return (
            f"the server at {settings.address} refused the client certificate "
            f"{settings.tls_cert}: is it issued by the server's {AUTHSVC_TLS_CLIENT_CA}?"
        )
    return f"the server at {settings.address} closed the connection"


def speaks_tls(address: str, timeout: float) -> bool:
    """True when the server at ``address`` (HOST:PORT) completes a TLS handshake.

    Nothing is verified: this only tells a TLS server from a plaintext one.
    """
    host, _, port = address.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout) as raw,
            context.wrap_socket(raw),
        ):
            return True
    except ssl.SSLError as exc:  # an alert (e.g. no client certificate) still means TLS
        return "ALERT" in str(exc.reason or "").upper()
    except (OSError, ValueError):
        return False
