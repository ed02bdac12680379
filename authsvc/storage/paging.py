"""Keyset pagination over ``(created_at, id)``: a page of rows and where the next begins.

Page tokens are the edge's business (``edge.paging``); here a position is a ``Cursor``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import Base

M = TypeVar("M", bound=Base)
T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Cursor:
    """The position after which the next page starts."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class PageRequest:
    """How many rows, after which position (None: from the start)."""

    size: int
    after: Cursor | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of items, and the position of the next one (None on the last page)."""

    items: list[T]
    next: Cursor | None

    def map(self, view: Callable[[T], U]) -> Page[U]:
        """The same page with ``view`` of each item (rows to the views flows return)."""
        return Page([view(item) for item in self.items], self.next)


def page(
    db: DbSession,
    query: Select[M],
    model: type[M],
    request: PageRequest,
    *,
    newest_first: bool = False,
) -> Page[M]:
    """One page of ``query``'s rows, oldest (or newest) first."""
    position = tuple_(model.created_at, model.id)
    if newest_first:
        query = query.order_by(model.created_at.desc(), model.id.desc())
    else:
        query = query.order_by(model.created_at, model.id)
    query = query.limit(request.size + 1)
    if request.after:
        after = (request.after.created_at, request.after.id)
        query = query.where(position < after if newest_first else position > after)
    rows = list(db.scalars(query))
    if len(rows) <= request.size:
        return Page(rows, None)
    last = rows[request.size - 1]
    return Page(rows[: request.size], Cursor(last.created_at, last.id))
