"""The interceptor that decides who may call what (``edge.caller_policy``).

It learns the caller's identities (its client certificate's, and the name of the API
key it sends as ``x-api-key``) and whether it is on the loopback interface, then asks
``Admission``. A presented key that is not live fails the call with UNAUTHENTICATED,
reason ``API_KEY_INVALID``, whatever the method: a service sending a revoked key should
learn so at once. Denials raise CallerNotAllowed, which the error interceptor (installed
outside this one) turns into PERMISSION_DENIED with reason CALLER_NOT_ALLOWED. Every
refusal is handed to a hook (the composition root audits and logs it).

For an RPC whose request carries the end user's ``ip_address``, it also settles whether
this caller may assert that address, for the duration of the call
(``asserts_end_user_address``, read by ``edge.end_user``).

It also states the call's caller for the account events the call writes
(``rules.events.calling_as``): the API key's name, else the certificate's first
identity, else a caller without identity. It is resolved only if an event is written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn, Protocol, TypeAlias, cast
from urllib.parse import unquote

import grpc

from authsvc.edge.caller_policy import SERVICES, Admission
from authsvc.edge.wrapping import (
    Handler,
    PerMethodInterceptor,
    UnaryBehavior,
    guard_handler,
    wrap_unary,
)
from authsvc.errors import CallerNotAllowed
from authsvc.rules.events import ANONYMOUS_CALLER, Actor, ActorKind, calling_as

#: The call metadata that carries an API key (every authsvc client sends it there).
API_KEY_HEADER = "x-api-key"
# auth_context() keys of the identities a client certificate proves.
_IDENTITY_KEYS = ("x509_common_name", "peer_dns", "peer_uri")

DeniedHook: TypeAlias = Callable[[tuple[str, ...], str], None]

#: The AuthService RPCs whose request carries the end user's ``ip_address``.
ASSERTING_METHODS = frozenset(
    f"/{SERVICES[0].full_name}/{m.name}"
    for m in SERVICES[0].methods
    if "ip_address" in m.input_type.fields_by_name
)
# Whether the current call's caller may assert the end user's address (None: not settled,
# the call did not pass this interceptor). A handler runs in the thread that set it.
_ASSERTS: ContextVar[bool | None] = ContextVar("asserts_end_user_address", default=None)

#: The RPCs that never change anything, so they need no actor for account events. The
#: hot path (ValidateToken) then pays no context-variable work per call.
READ_ONLY_METHODS = frozenset(
    f"/{SERVICES[0].full_name}/{name}" for name in ("ValidateToken", "GetSigningKeys")
)


def asserts_end_user_address() -> bool | None:
    """Whether the caller of the current call may assert the end user's address;
    None outside a call of an ``ASSERTING_METHODS`` RPC through this interceptor."""
    return _ASSERTS.get()


class CallerKeys(Protocol):
    """Resolves API keys to caller identities (``flows.api_keys.ApiKeys``)."""

    def identify(self, key: str) -> str | None:
        """The name of the live key ``key``; None when unknown, revoked or malformed."""
        ...

    def refuse(self, caller: str, method: str) -> NoReturn:
        """Refuses a call for its key (audited): raises ApiKeyInvalid."""
        ...


def peer_identities(context: grpc.ServicerContext) -> tuple[str, ...]:
    """The identities the caller's verified certificate proves: CN, SAN DNS names and URIs."""
    # The stubs type auth_context() as str → bytes; grpcio returns str → list of bytes.
    auth = cast(Mapping[str, Sequence[bytes]], context.auth_context())
    return tuple(
        value.decode("utf-8", "replace") for key in _IDENTITY_KEYS for value in auth.get(key, ())
    )


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a gRPC peer string; None for unix sockets and anything unparsable.

    ``peer`` is gRPC's ``ipv4:127.0.0.1:5000`` or ``ipv6:[::1]:5000``; grpc may
    percent-encode the brackets (``ipv6:%5B::1%5D:5000``), so the address is unquoted
    first. An IPv4-mapped IPv6 address (``[::ffff:127.0.0.1]``) is its IPv4 address.
    """
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host = unquote(address).rsplit(":", 1)[0]
    if kind == "ipv6":
        if not (host.startswith("[") and host.endswith("]")):
            return None
        host = host[1:-1].partition("%")[0]  # a zone id names the peer's own interface
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped or ip


def is_local_peer(peer: str) -> bool:
    """True for a peer on the loopback interface (``127.0.0.0/8``, ``::1``, an
    IPv4-mapped ``::ffff:127.0.0.1``, however grpc escapes it) or a unix socket."""
    if peer.partition(":")[0] in ("unix", "unix-abstract"):
        return True
    ip = peer_address(peer)
    return ip is not None and ip.is_loopback


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

        def plain(inner: UnaryBehavior) -> UnaryBehavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                names = self._admit(context, method, decides)
                with calling_as(lambda: caller_actor(context, names)):
                    return inner(request, context)

            return behavior

        def reading(inner: UnaryBehavior) -> UnaryBehavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                self._admit(context, method, decides)
                return inner(request, context)

            return behavior

        if method in ASSERTING_METHODS:
            admitting = self._asserting(method, decides)
        else:
            admitting = reading if method in READ_ONLY_METHODS else plain
        wrapped: Handler = wrap_unary(handler, admitting)
        return wrapped

    def _asserting(self, method: str, decides: bool) -> Callable[[UnaryBehavior], UnaryBehavior]:
        """Admits the caller as ``wrap`` does, then runs the call knowing whether the
        caller may assert the end user's address (``asserts_end_user_address``)."""

        def admitting(inner: UnaryBehavior) -> UnaryBehavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                names = self._key_names(context, method)
                identities = peer_identities(context) + names
                local = is_local_peer(context.peer())
                if decides:
                    self._refuse_unless_allowed(context, method, identities, local)
                trusted = self._admission.trusts_end_user_address(identities, local=local)
                settled = _ASSERTS.set(trusted)
                try:
                    with calling_as(lambda: caller_actor(context, names)):
                        return inner(request, context)
                finally:
                    _ASSERTS.reset(settled)

            return behavior

        return admitting

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
        if decides:  # e.g. ValidateToken without a policy: only a bad key is refused
            identities = peer_identities(context) + names
            local = is_local_peer(context.peer())
            self._refuse_unless_allowed(context, method, identities, local)
        return names

    def _refuse_unless_allowed(
        self,
        context: grpc.ServicerContext,
        method: str,
        identities: tuple[str, ...],
        local: bool,
    ) -> None:
        """Raises CallerNotAllowed (after the denial hook) unless the policy allows the
        caller of ``identities`` the method."""
        refusal = self._admission.refusal(identities, method, local=local)
        if refusal is not None:
            self._on_denied(identities or (f"peer {context.peer()}",), method)
            raise CallerNotAllowed(refusal)

    def _key_names(self, context: grpc.ServicerContext, method: str) -> tuple[str, ...]:
        """The identity of the call's API key (none without a key).

        Raises ApiKeyInvalid (after auditing) when the key is not live or several are sent.
        """
        keys = presented_keys(context)
        if not keys:
            return ()
        name = self._keys.identify(keys[0]) if len(keys) == 1 else None
        if name is None:
            self._keys.refuse(f"peer {context.peer()}", method)
        return (name,)
