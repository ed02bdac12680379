"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from authsvc.runtime.settings import SecretKeys, Settings
from tests.clients.event_consumers import RestartableServer


@pytest.fixture
def restartable_server(make_settings: Callable[..., Settings]) -> Iterator[RestartableServer]:
    """An authsvc on a fixed port that the test can restart (see event_consumers.py)."""
    server = RestartableServer(make_settings)
    yield server
    server.stop()


@pytest.fixture
def token_servers(start_server: Callable[..., Any]) -> dict[str, str]:
    """Two servers issuing access tokens (a secret key set), as the clients' Verifier
    tests expect them in their environment: AUTHSVC_TEST_ADDRESS with the default
    settings, AUTHSVC_TEST_SHORT_TTL_ADDRESS with access tokens that live one second."""
    keys = SecretKeys.parse(Fernet.generate_key().decode())
    default, _ = start_server(secret_key=keys)
    short_ttl, _ = start_server(secret_key=keys, access_token_ttl=timedelta(seconds=1))
    return {
        "AUTHSVC_TEST_ADDRESS": f"127.0.0.1:{default.port}",
        "AUTHSVC_TEST_SHORT_TTL_ADDRESS": f"127.0.0.1:{short_ttl.port}",
    }
