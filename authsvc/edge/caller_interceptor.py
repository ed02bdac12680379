"""The interceptor that enforces the caller policy (``edge.caller_policy``).

Denials raise CallerNotAllowed, which the error interceptor (installed outside this
one) turns into PERMISSION_DENIED with reason CALLER_NOT_ALLOWED; each denial is handed
to a hook (the composition root audits and logs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeAlias, cast

import grpc

from authsvc.edge.caller_policy import CallerPolicy
from authsvc.edge.wrapping import Handler, PerMethodInterceptor, guard_handler
from authsvc.errors import CallerNotAllowed

# auth_context() keys of the identities a client certificate proves.
_IDENTITY_KEYS = ("x509_common_name", "peer_dns", "peer_uri")

DeniedHook: TypeAlias = Callable[[tuple[str, ...], str], None]


def peer_identities(context: grpc.ServicerContext) -> tuple[str, ...]:
    """The identities the caller's verified certificate proves: CN, SAN DNS names and URIs."""
    # The stubs type auth_context() as str → bytes; grpcio returns str → list of bytes.
    auth = cast(Mapping[str, Sequence[bytes]], context.auth_context())
    return tuple(
        value.decode("utf-8", "replace") for key in _IDENTITY_KEYS for value in auth.get(key, ())
    )


class CallerInterceptor(PerMethodInterceptor):
    """Lets a call through only when the caller policy allows its certificate the method."""

    def __init__(self, policy: CallerPolicy, on_denied: DeniedHook) -> None:
        super().__init__()
        self._policy = policy
        self._on_denied = on_denied

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` admitting only the callers the policy allows ``method``."""
        return guard_handler(handler, lambda context: self._admit(context, method))

    @contextmanager
    def _admit(self, context: grpc.ServicerContext, method: str) -> Iterator[None]:
        identities = peer_identities(context)
        if not self._policy.allows(identities, method):
            self._on_denied(identities, method)
            raise CallerNotAllowed()
        yield
