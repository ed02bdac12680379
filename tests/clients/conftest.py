"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from authsvc.runtime.settings import Settings
from tests.clients.event_consumers import RestartableServer


@pytest.fixture
def restartable_server(make_settings: Callable[..., Settings]) -> Iterator[RestartableServer]:
    """An authsvc on a fixed port that the test can restart (see event_consumers.py)."""
    server = RestartableServer(make_settings)
    yield server
    server.stop()
