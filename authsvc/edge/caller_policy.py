"""Who may call what: the caller policy (``edge.caller_interceptor`` enforces it).

Under mutual TLS every caller presents a certificate signed by the client CA. The
policy file maps the certificate's identities (subject CN, SAN DNS names and URIs) to
the methods each may call; any other call fails with PERMISSION_DENIED,
reason ``CALLER_NOT_ALLOWED``. Health and reflection are methods like any other.

The file is TOML (or JSON when its name ends in ``.json``)::

    [callers]
    "web-frontend" = ["CreateUser", "CreateSession", "grpc.health.v1.Health/Check"]
    "admin-tool" = ["authsvc.v1.AuthService/*", "grpc.health.v1.Health/*"]

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

from authsvc.v1 import auth_service_pb2

# The services authsvc serves (see server.py): rules may name only their methods.
SERVICES: tuple[ServiceDescriptor, ...] = (
    auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
)
_AUTH_SERVICE = SERVICES[0]


@dataclass(frozen=True)
class CallerPolicy:
    """Which (identity, full method name) pairs are allowed; everything else is denied."""

    allowed: frozenset[tuple[str, str]]

    def allows(self, identities: Sequence[str], method: str) -> bool:
        """True when any of the caller's ``identities`` may call ``method`` (``/svc/Name``)."""
        return any((identity, method) in self.allowed for identity in identities)

    @classmethod
    def from_mapping(cls, data: object) -> CallerPolicy:
        """Builds a policy from ``{"callers": {identity: [rule, ...]}}``.

        Raises ValueError naming the first bad entry.
        """
        if not isinstance(data, dict) or set(data) != {"callers"}:
            raise ValueError('expected exactly one table, "callers"')
        callers = data["callers"]
        if not isinstance(callers, dict):
            raise ValueError('"callers" must map identities to lists of methods')
        allowed: set[tuple[str, str]] = set()
        for identity, rules in callers.items():
            if not identity or not isinstance(rules, list):
                raise ValueError(f"callers.{identity}: expected a list of methods")
            for rule in rules:
                allowed.update((identity, method) for method in _expand(identity, rule))
        return cls(frozenset(allowed))


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
