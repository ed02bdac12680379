"""Position cursors: the opaque text that names a place in a commit-ordered feed.

Two feeds hand their positions to consumers as cursors, which come back as
``after_cursor``: the account events (``Event.cursor``, WatchEvents and ListEvents) and
the revocations (``Revocation.cursor``, WatchRevocations). One codec serves both: a
cursor is the feed's tag, then the position's digits. Decoding checks the tag, the
digits and the range (a position is a positive 64-bit integer, or 0) and raises
``Rejected``; the request parser names the field (INVALID_ARGUMENT on ``after_cursor``).

Each feed keeps the text it has always handed out. Consumers store cursors across
upgrades, and in a rolling upgrade a consumer may resume on an old replica with a cursor
a new one gave it, so a new format would be refused there (a verifier would fail closed
until the last replica is upgraded):

- events: no tag, 16 lowercase hex digits, so text order is commit order;
- revocations: the tag ``r``, then the decimal position.

The tags also keep the feeds apart: an event's cursor is no revocation cursor.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from authsvc.rules.values import Rejected

#: Positions are BIGINT identities: never above this.
MAX_POSITION = 2**63 - 1


@dataclass(frozen=True)
class PositionCursors:
    """The cursors of one feed's positions: ``tag``, then the digits in ``base``, padded
    with zeros to ``width`` (0: unpadded). ``refusal`` says what a malformed one is not."""

    tag: str
    base: int
    width: int
    refusal: str

    @property
    def _digits(self) -> str:
        return string.digits if self.base == 10 else string.hexdigits[:16]

    def encode(self, position: int) -> str:
        """The cursor of ``position``."""
        digits = format(position, f"0{self.width}{'d' if self.base == 10 else 'x'}")
        return self.tag + digits

    def after(self, cursor: str) -> int:
        """The position a consumer resumes after: 0 (the feed's start) for "", else the
        position ``cursor`` names. Raises Rejected when it is no cursor of this feed."""
        return self.decode(cursor) if cursor else 0

    def decode(self, cursor: str) -> int:
        """The position ``cursor`` names. Raises Rejected when it is no cursor of this feed."""
        digits = cursor[len(self.tag) :]
        if not cursor.startswith(self.tag) or not self._well_formed(digits):
            raise Rejected(self.refusal)
        position = int(digits, self.base)
        if position > MAX_POSITION:
            raise Rejected(self.refusal)
        return position

    def _well_formed(self, digits: str) -> bool:
        # Only ASCII digits: int() would also read "١٢" or " 12".
        longest = self.width or len(self.encode(MAX_POSITION)) - len(self.tag)
        fits = len(digits) == self.width if self.width else 0 < len(digits) <= longest
        return fits and all(c in self._digits for c in digits)


#: ``Event.cursor``: text order is commit order.
EVENTS = PositionCursors("", 16, 16, 'must be empty, "now" or the cursor of an Event')
#: ``Revocation.cursor``.
REVOCATIONS = PositionCursors("r", 10, 0, "is not a cursor of WatchRevocations")
