"""Where the end user is: whose word about the end user's address counts.

A request's ``ip_address`` drives throttling (per end-user address) and the audit trail,
so it counts only when the caller is trusted to assert it: a caller the policy flags
``asserts_end_user_address = true``, or without a policy a loopback caller (or any
caller while protected mode is off). Any other caller could name someone else's
address to lock it out, or spread its own attempts over invented ones; for it the
peer's own address counts, and the asserted one is kept only as *claimed* (in the
audit detail). ``edge.caller_interceptor`` settles the trust per call.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from authsvc.edge.caller_interceptor import asserts_end_user_address, is_local_peer, peer_address
from authsvc.flows.changes import Origin


@dataclass(frozen=True)
class EndUser:
    """How to read the end user's address in one call."""

    #: The caller may assert the end user's address.
    trusted: bool
    #: The peer's own IP address, canonical ("" for a unix socket).
    peer_ip: str

    @classmethod
    def of(cls, context: grpc.ServicerContext) -> EndUser:
        """The call's reading; trusted as the caller interceptor settled it (when the
        call did not pass it, as protected mode would: loopback only)."""
        peer = context.peer()
        trusted = asserts_end_user_address()
        if trusted is None:
            trusted = is_local_peer(peer)
        ip = peer_address(peer)
        return cls(trusted, str(ip) if ip else "")

    def origin(self, asserted: str, user_agent: str = "") -> Origin:
        """The origin for ``asserted`` (a checked ``ip_address``, may be empty)."""
        if self.trusted:
            return Origin(asserted, user_agent)
        claimed = asserted if asserted != self.peer_ip else ""
        return Origin(self.peer_ip, user_agent, claimed)
