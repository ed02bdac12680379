"""What storage raises: it knows no gRPC and no API error; the edge maps these."""

from __future__ import annotations


class StorageUnavailable(Exception):
    """The database could not be reached, or the link to it broke."""


class ConnectionWaitExpired(Exception):
    """The calling RPC's deadline passed while it waited for a pooled connection."""
