"""TLS for the server (optionally mutual) and for authsvc's own client (``authsvc health``).

The PEM files are named in Settings (``AUTHSVC_TLS_*``), which has already checked that
they exist and are readable.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from authsvc.runtime.settings import Settings


def add_port(server: grpc.Server, settings: Settings) -> int:
    """Binds ``settings.address``: TLS when a certificate is set, else plaintext.

    With ``tls_client_ca`` the server requires a client certificate signed by that CA.
    Returns the bound port (0 when binding failed).
    """
    if not settings.tls_cert:
        return server.add_insecure_port(settings.address)
    return server.add_secure_port(settings.address, server_credentials(settings))


def server_credentials(settings: Settings) -> grpc.ServerCredentials:
    """The server's certificate and key, plus the client CA under mutual TLS."""
    pair = (_read(settings.tls_key), _read(settings.tls_cert))
    client_ca = _read(settings.tls_client_ca) if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def open_channel(settings: Settings, target: str) -> grpc.Channel:
    """A channel to ``target`` as authsvc's own client.

    TLS when ``tls_ca`` or ``tls_cert`` is set: the server is verified against ``tls_ca``
    (the system roots when unset) under the name ``tls_server_name`` (the target host when
    unset), and ``tls_cert``/``tls_key`` are presented as the client certificate.
    Plaintext otherwise.
    """
    if not (settings.tls_ca or settings.tls_cert):
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_ca) if settings.tls_ca else None,
        private_key=_read(settings.tls_key) if settings.tls_key else None,
        certificate_chain=_read(settings.tls_cert) if settings.tls_cert else None,
    )
    options = (
        [("grpc.ssl_target_name_override", settings.tls_server_name)]
        if settings.tls_server_name
        else []
    )
    return grpc.secure_channel(target, credentials, options=options)


def _read(path: str) -> bytes:
    return Path(path).read_bytes()
