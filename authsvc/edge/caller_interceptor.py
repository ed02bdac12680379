"""The interceptor that decides who may call what (``edge.caller_policy``).

It learns the caller's identities (its client certificate's, and the name of the API
key it sends as ``x-api-key``) and whether it is on the loopback interface, then asks
``Admission``. A presented key that is not live fails the call with UNAUTHENTICATED,
reason ``API_KEY_INVALID``, whatever the method: a service sending a revoked key should
learn so at once. Denials raise CallerNotAllowed, which the error interceptor (installed
outside this one) turns into PERMISSION_DENIED with reason CALLER_NOT_ALLOWED. Every
refusal is handed to a hook (the composition root audits and logs it).

It also states the call's caller for the account events the call writes
(``rules.events.calling_as``): the API key's name, else the certificate's first
identity, else a caller without identity. It is resolved only if an event is written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeAlias, cast

import grpc

from authsvc.edge.caller_policy import Admission
from authsvc.edge.wrapping import (
    Handler,
    PerMethodInterceptor,
    UnaryBehavior,
    guard_handler,
    wrap_unary,
)
from authsvc.errors import ApiKeyInvalid, CallerNotAllowed
from authsvc.rules.events import ANONYMOUS_CALLER, Actor, ActorKind, calling_as

#: The call metadata that carries an API key (every authsvc client sends it there).
API_KEY_HEADER = "x-api-key"
# auth_context() keys of the identities a client certificate proves.
_IDENTITY_KEYS = ("x509_common_name", "peer_dns", "peer_uri")

DeniedHook: TypeAlias = Callable[[tuple[str, ...], str], None]


class CallerKeys(Protocol):
    """Resolves API keys to caller identities (``flows.api_keys.ApiKeys``)."""

    def identify(self, key: str) -> str | None:
        """The name of the live key ``key``; None when unknown, revoked or malformed."""
        ...

    def rejected(self, caller: str, method: str) -> None:
        """Audits a call refused for its key; never raises."""
        ...


def peer_identities(context: grpc.ServicerContext) -> tuple[str, ...]:
    """The identities the caller's verified certificate proves: CN, SAN DNS names and URIs."""
    # The stubs type auth_context() as str → bytes; grpcio returns str → list of bytes.
    auth = cast(Mapping[str, Sequence[bytes]], context.auth_context())
    return tuple(
        value.decode("utf-8", "replace") for key in _IDENTITY_KEYS for value in auth.get(key, ())
    )


def is_local_peer(peer: str) -> bool:
    """True for a peer on the loopback interface or a unix socket.

    ``peer`` is gRPC's ``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000`` (an IPv4-mapped
    ``[::ffff:127.0.0.1]`` counts too), ``unix:/path`` or ``unix-abstract:name``.
    """
    kind, _, address = peer.partition(":")
    if kind in ("unix", "unix-abstract"):
        return True
    if kind not in ("ipv4", "ipv6"):
        return False
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def presented_keys(context: grpc.ServicerContext) -> list[str]:
    """The values of the call's ``x-api-key`` metadata (usually none or one)."""
    return [
        value
        for key, value in context.invocation_metadata() or ()
        if key == API_KEY_HEADER and isinstance(value, str)
    ]


def caller_actor(context: grpc.ServicerContext, key_names: tuple[str, ...]) -> Actor:
    """Who the caller is, for the account events it causes: its API key's name, else its
    certificate's first identity (the common name), else a caller without identity."""
    if key_names:
        return Actor(ActorKind.API_KEY, key_names[0])
    identities = peer_identities(context)
    if identities:
        return Actor(ActorKind.MTLS, identities[0])
    return ANONYMOUS_CALLER


class CallerInterceptor(PerMethodInterceptor):
    """Lets a call through only when ``admission`` allows its caller the method."""

    def __init__(self, admission: Admission, keys: CallerKeys, on_denied: DeniedHook) -> None:
        super().__init__()
        self._admission = admission
        self._keys = keys
        self._on_denied = on_denied

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` admitting only the callers the policy allows ``method``.

        Whether the policy decides ``method`` at all depends on the method alone, so it
        is settled here, once; a unary call then pays one plain function call.
        """
        decides = self._admission.decides(method)
        if handler.unary_unary is None:  # streaming: health Watch, reflection
            return guard_handler(handler, lambda context: self._guard(context, method, decides))

        def admitting(inner: UnaryBehavior) -> UnaryBehavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                names = self._admit(context, method, decides)
                with calling_as(lambda: caller_actor(context, names)):
                    return inner(request, context)

            return behavior

        wrapped: Handler = wrap_unary(handler, admitting)
        return wrapped

    @contextmanager
    def _guard(self, context: grpc.ServicerContext, method: str, decides: bool) -> Iterator[None]:
        names = self._admit(context, method, decides)
        with calling_as(lambda: caller_actor(context, names)):
            yield

    def _admit(self, context: grpc.ServicerContext, method: str, decides: bool) -> tuple[str, ...]:
        """The names of the call's API key (none or one).

        Raises ApiKeyInvalid or CallerNotAllowed unless the caller may call ``method``.
        """
        names = self._key_names(context, method)
        if not decides:  # e.g. ValidateToken without a policy: only a bad key is refused
            return names
        identities = peer_identities(context) + names
        peer = context.peer()
        refusal = self._admission.refusal(identities, method, local=is_local_peer(peer))
        if refusal is not None:
            self._on_denied(identities or (f"peer {peer}",), method)
            raise CallerNotAllowed(refusal)
        return names

    def _key_names(self, context: grpc.ServicerContext, method: str) -> tuple[str, ...]:
        """The identity of the call's API key (none without a key).

        Raises ApiKeyInvalid (after auditing) when the key is not live or several are sent.
        """
        keys = presented_keys(context)
        if not keys:
            return ()
        name = self._keys.identify(keys[0]) if len(keys) == 1 else None
        if name is None:
            self._keys.rejected(f"peer {context.peer()}", method)
            raise ApiKeyInvalid()
        return (name,)
