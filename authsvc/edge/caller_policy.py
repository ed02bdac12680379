"""Who may call what: the caller policy, and protected mode without one
(``edge.caller_interceptor`` enforces both).

A caller has identities: those of its client certificate under mutual TLS (subject CN,
SAN DNS names and URIs) and the name of the API key it sends as ``x-api-key``. The
policy file maps identities to the methods each may call; any other call fails with
PERMISSION_DENIED, reason ``CALLER_NOT_ALLOWED``. Health and reflection are methods
like any other.

Without a policy, authsvc runs in *protected mode* (like Redis's): the privileged RPCs
(user administration, and any AuthService RPC not listed as ordinary) answer only
callers on the loopback interface, unless ``AUTHSVC_PRIVILEGED_FROM_ANYWHERE`` says the
operator's own network policy already restricts who reaches authsvc.

The file is TOML (or JSON when its name ends in ``.json``)::

    [callers]
    "web-frontend" = ["CreateUser", "CreateSession", "grpc.health.v1.Health/Check"]
    "admin-tool" = ["authsvc.v1.AuthService/*", "grpc.health.v1.Health/*"]
    "*" = ["grpc.health.v1.Health/Check"]  # every caller, even one with no identity

The identity ``*`` stands for every caller, identified or not (a kubelet's gRPC probe
presents neither a certificate nor a key).

An identity may instead map to a table, to say it may assert the end user's address
(the ``ip_address`` of a request; see ``edge.end_user``)::

    [callers.web-frontend]
    methods = ["CreateUser", "CreateSession"]
    asserts_end_user_address = true

Loopback callers keep what protected mode gives them unless the policy says otherwise,
with a top-level ``loopback`` key: ``"privileged"`` (the default: every method),
``"open"`` (the open RPCs, health and reflection: what any caller gets without a policy)
or ``"none"`` (only what the policy grants; for a proxy or sidecar on the same host,
which makes every caller look local).

A rule is a short AuthService method name (``CreateUser``), a full method name
(``grpc.health.v1.Health/Check``, leading ``/`` optional), every method of a service
(``grpc.health.v1.Health/*``), or ``*`` for everything served. Unknown names are errors,
so a typo cannot silently deny (or allow) a method.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from authsvc.setting_names import AUTHSVC_CALLERS, AUTHSVC_PRIVILEGED_FROM_ANYWHERE
from authsvc_client.v1 import auth_service_pb2

# The services authsvc serves (see server.py): rules may name only their methods.
SERVICES: tuple[ServiceDescriptor, ...] = (
    auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
)
_AUTH_SERVICE = SERVICES[0]

#: AuthService RPCs that hand out power over other people's accounts: without a caller
#: policy only loopback callers may call them.
PRIVILEGED_METHODS = (
    "GetUser",
    "UpdateUser",
    "DeleteUser",
    "ListUsers",
    "ListSessions",
    "ListAuditEvents",
    "StartPasswordReset",
    "SetPassword",
    "DisableUser",
    "EnableUser",
    "ImportUsers",
    "StartEmailVerification",
    "RevokeSession",
    "RevokeUserSessions",
    # Account events and webhooks: every user's changes.
    "WatchEvents",
    "ListEvents",
    "CreateWebhook",
    "ListWebhooks",
    "DeleteWebhook",
    "ListWebhookDeliveries",
)
#: AuthService RPCs an end user's own request drives (they carry the user's password or
#: token): open to every caller without a policy. Any RPC in neither list is privileged.
ORDINARY_METHODS = (
    "CreateUser",
    "CreateSession",
    "ValidateToken",
    "RefreshSession",
    "DeleteSession",
    "ChangePassword",
    "CompletePasswordReset",
    "VerifyEmail",
    # Multi-factor sign-in: each acts for the end user who holds the session token,
    # the sign-in challenge or the passkey.
    "StartTotpEnrollment",
    "ConfirmTotpEnrollment",
    "RemoveTotp",
    "CompleteSignIn",
    "ReauthenticateSession",
    "StartPasskeyRegistration",
    "FinishPasskeyRegistration",
    "ListPasskeys",
    "RemovePasskey",
    "StartPasskeySignIn",
    "FinishPasskeySignIn",
    # Local verification: public keys and revoked ids, nothing secret or personal.
    "GetSigningKeys",
    "WatchRevocations",
)
#: Privileged while they hand their token to the caller (AUTHSVC_MAIL_DELIVERY=caller);
#: ordinary when authsvc mails it to the account's own address instead (``smtp``).
MAILED_TOKEN_METHODS = ("StartPasswordReset", "StartEmailVerification")
_MAILED_TOKENS = frozenset(f"/{_AUTH_SERVICE.full_name}/{name}" for name in MAILED_TOKEN_METHODS)
#: Named above but not served yet (none: kept for RPCs added in steps).
PENDING_METHODS: frozenset[str] = frozenset()
#: The full names (``/authsvc.v1.AuthService/Name``) of the ordinary RPCs served.
_ORDINARY = frozenset(
    f"/{_AUTH_SERVICE.full_name}/{name}"
    for name in ORDINARY_METHODS
    if name in _AUTH_SERVICE.methods_by_name
)

#: What a policy's ``loopback`` may say loopback callers get on top of their grants.
LOOPBACK_ACCESS = ("privileged", "open", "none")
_TOP_LEVEL = frozenset({"callers", "loopback"})
#: The policy identity that stands for every caller.
ANY_CALLER = "*"


def is_privileged(method: str, *, tokens_mailed: bool = False) -> bool:
    """True for an AuthService method (``/svc/Name``) not listed as ordinary.

    ``tokens_mailed``: authsvc mails reset and verification tokens itself, so
    MAILED_TOKEN_METHODS are ordinary. Fails closed: an RPC nobody classified is
    privileged. Health and reflection are not.
    """
    if tokens_mailed and method in _MAILED_TOKENS:
        return False
    return method.startswith(f"/{_AUTH_SERVICE.full_name}/") and method not in _ORDINARY


@dataclass(frozen=True)
class CallerPolicy:
    """Which (identity, full method name) pairs are allowed, and what loopback callers get
    besides (``LOOPBACK_ACCESS``); everything else is denied.

    ``asserting``: the identities trusted to assert the end user's address.
    """

    allowed: frozenset[tuple[str, str]]
    asserting: frozenset[str] = frozenset()
    loopback: str = "privileged"

    def allows(self, identities: Sequence[str], method: str, *, local: bool = False) -> bool:
        """True when any of the caller's ``identities`` (or ``*``, every caller) may call
        ``method`` (``/svc/Name``), or a ``local`` caller may by ``loopback``."""
        if local and (
            self.loopback == "privileged" or (self.loopback == "open" and not is_privileged(method))
        ):
            return True
        return (ANY_CALLER, method) in self.allowed or any(
            (identity, method) in self.allowed for identity in identities
        )

    def asserts_end_user_address(self, identities: Sequence[str]) -> bool:
        """True when any of ``identities`` (or ``*``) may assert the end user's address."""
        return ANY_CALLER in self.asserting or any(i in self.asserting for i in identities)

    @classmethod
    def from_mapping(cls, data: object) -> CallerPolicy:
        """Builds a policy from ``{"callers": {identity: [rule, ...]}, "loopback": ...}``
        (``loopback`` optional; an identity may map to ``{"methods": [rule, ...],
        "asserts_end_user_address": bool}`` instead of a list).

        Raises ValueError naming the first bad entry.
        """
        if not isinstance(data, dict) or "callers" not in data or set(data) - _TOP_LEVEL:
            raise ValueError('expected a table "callers" and optionally a key "loopback"')
        loopback = data.get("loopback", "privileged")
        if loopback not in LOOPBACK_ACCESS:
            allowed_values = ", ".join(f'"{value}"' for value in LOOPBACK_ACCESS)
            raise ValueError(f"loopback = {loopback!r} is not one of {allowed_values}")
        callers = data["callers"]
        if not isinstance(callers, dict):
            raise ValueError('"callers" must map identities to lists of methods')
        allowed: set[tuple[str, str]] = set()
        asserting: set[str] = set()
        for identity, entry in callers.items():
            rules, asserts = _entry(identity, entry)
            if asserts:
                asserting.add(identity)
            for rule in rules:
                allowed.update((identity, method) for method in _expand(identity, rule))
        return cls(frozenset(allowed), frozenset(asserting), loopback)


@dataclass(frozen=True)
class Admission:
    """Decides each call: by the caller policy when there is one, else by protected mode."""

    policy: CallerPolicy | None
    privileged_from_anywhere: bool = False
    #: AUTHSVC_MAIL_DELIVERY=smtp: the MAILED_TOKEN_METHODS are ordinary.
    tokens_mailed: bool = False

    def decides(self, method: str) -> bool:
        """False when every caller may call ``method`` whoever it is (no policy, and an
        ordinary method or protected mode off): then ``refusal`` needs no identities."""
        if self.policy is not None:
            return True
        return self._privileged(method) and not self.privileged_from_anywhere

    def trusts_end_user_address(self, identities: Sequence[str], *, local: bool) -> bool:
        """True when the caller may assert the end user's address: by the policy's flag
        when there is one; else when it is local, or protected mode is off (then every
        peer is trusted with the privileged RPCs, which is more)."""
        if self.policy is not None:
            return self.policy.asserts_end_user_address(identities)
        return local or self.privileged_from_anywhere

    def refusal(self, identities: Sequence[str], method: str, *, local: bool) -> str | None:
        """None when the call may proceed, else the message of its PERMISSION_DENIED.

        ``local``: the peer is on the loopback interface (or a unix socket).
        """
        name = method.rsplit("/", 1)[-1]
        if self.policy is not None:
            if self.policy.allows(identities, method, local=local):
                return None
            who = ", ".join(identities) or "a caller with no identity (no certificate, no API key)"
            return f"{who} may not call {name}: grant it in the caller policy ({AUTHSVC_CALLERS})"
        if local or self.privileged_from_anywhere or not self._privileged(method):
            return None
        return (
            f"{name} is a privileged RPC: without a caller policy only callers on the loopback "
            f"interface may call it. To allow this caller, set {AUTHSVC_CALLERS} to a caller "
            "policy naming it by API key (`authsvc api-key create NAME`, sent as x-api-key) "
            "or by client certificate identity; "
            f"or set {AUTHSVC_PRIVILEGED_FROM_ANYWHERE}=true if your "
            "own network policy decides who reaches authsvc"
        )

    def _privileged(self, method: str) -> bool:
        return is_privileged(method, tokens_mailed=self.tokens_mailed)


def load_policy(path: str) -> CallerPolicy:
    """Reads a callers file: TOML, or JSON when the name ends in ``.json``.

    Raises ValueError (unreadable file, bad syntax, unknown method names).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    is_json = path.endswith(".json")
    try:
        data = json.loads(raw) if is_json else tomllib.loads(raw.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError and UnicodeDecodeError
        raise ValueError(f"{path} is not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
    try:
        return CallerPolicy.from_mapping(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _entry(identity: str, entry: object) -> tuple[list[object], bool]:
    """An identity's rules, and whether it may assert the end user's address."""
    if isinstance(entry, dict):
        unknown = set(entry) - {"methods", "asserts_end_user_address"}
        if unknown:
            raise ValueError(f"callers.{identity}: unknown key {sorted(unknown)[0]!r}")
        asserts = entry.get("asserts_end_user_address", False)
        if not isinstance(asserts, bool):
            raise ValueError(f"callers.{identity}.asserts_end_user_address: expected true or false")
        entry = entry.get("methods", [])
    else:
        asserts = False
    if not identity or not isinstance(entry, list):
        raise ValueError(f"callers.{identity}: expected a list of methods")
    return entry, asserts


def _expand(identity: str, rule: object) -> list[str]:
    """The full method names (``/svc/Name``) a rule stands for."""
    if not isinstance(rule, str):
        raise ValueError(f"callers.{identity}: {rule!r} is not a method name")
    if rule == "*":
        return [_full(s, m.name) for s in SERVICES for m in s.methods]
    if "/" not in rule.strip("/") and "." not in rule:
        service, name = _AUTH_SERVICE.full_name, rule
    else:
        service, _, name = rule.strip("/").partition("/")
    found = next((s for s in SERVICES if s.full_name == service), None)
    if found is not None and name == "*":
        return [_full(found, m.name) for m in found.methods]
    if found is not None and name in found.methods_by_name:
        return [_full(found, name)]
    raise ValueError(f"callers.{identity}: {rule!r} is not a method authsvc serves")


def _full(service: ServiceDescriptor, method: str) -> str:
    return f"/{service.full_name}/{method}"
