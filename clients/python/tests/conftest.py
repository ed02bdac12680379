"""Fixtures of the client's own tests (the fake AuthService is in ``fake_auth``)."""

from fake_auth import fake

__all__ = ["fake"]
