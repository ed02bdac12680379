"""The heartbeat of a feed's stream (WatchEvents, WatchRevocations).

A stream that has nothing new to send says it is alive with a heartbeat: everything up
to ``position`` has been sent (or filtered out, or has expired), so the consumer may
resume after that position's cursor. Each stream decides when one is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The stream is alive and has sent everything up to ``position``, at ``time``."""

    position: int
    time: datetime
