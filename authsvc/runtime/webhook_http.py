"""One webhook attempt over HTTP: a POST to the address that was checked, nothing else.

The URL's host is resolved and every address checked (``rules.webhook_urls``) right
before connecting, and the connection goes to the checked address: the request still
names the host (``Host``, and TLS SNI and certificate checks for https), so a DNS answer
that changes between the check and the connect (rebinding) cannot send it elsewhere.
Redirects are not followed (a 3xx is a failure), the answer's body is read up to 64 KiB
and dropped, and every socket operation has the attempt's timeout.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping

from authsvc.rules.values import Rejected
from authsvc.rules.webhook_deliveries import Outcome
from authsvc.rules.webhook_urls import IpAddress, Resolver, Target, parse, resolve, resolve_public

BODY_READ_MAX = 64 * 1024
USER_AGENT = "authsvc-webhooks/1"


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to ``address``, naming ``host`` in the request."""

    def __init__(self, target: Target, address: IpAddress, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to ``address``; the certificate is checked against ``host``."""

    def __init__(self, target: Target, address: IpAddress, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(
    url: str,
    body: str,
    headers: Mapping[str, str],
    timeout: float,
    allow_private: bool,
    resolver: Resolver = resolve,
) -> Outcome:
    """POSTs ``body`` (JSON) with ``headers`` to ``url``; never raises.

    Returns the answer's status, or status 0 and why no answer came (refused address,
    name not resolved, connection refused, timeout, TLS failure).
    """
    try:
        target = parse(url)
        address = resolve_public(target, allow_private, resolver)
    except Rejected as exc:
        return Outcome(0, f"refused: the URL {exc}")
    except OSError as exc:
        return Outcome(0, f"cannot resolve the host: {exc.strerror or exc}")
    make = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = make(target, address, timeout)
    try:
        return _exchange(connection, target, body, headers)
    finally:
        connection.close()


def _exchange(
    connection: http.client.HTTPConnection, target: Target, body: str, headers: Mapping[str, str]
) -> Outcome:
    sent = {
        **headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        connection.request("POST", target.path, body=body.encode(), headers=sent)
        response = connection.getresponse()
        response.read(BODY_READ_MAX)
    except TimeoutError:
        return Outcome(0, "timed out")
    except ConnectionRefusedError:
        return Outcome(0, "connection refused")
    except ssl.SSLError as exc:
        return Outcome(0, f"TLS failed: {exc.reason or type(exc).__name__}")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(0, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status < 300:
        return Outcome(response.status)
    return Outcome(response.status, f"HTTP {response.status}")
