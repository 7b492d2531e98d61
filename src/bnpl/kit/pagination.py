"""Cursor pagination: `limit` (1-100, default 20) and `starting_after` (an id)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int = 20
    starting_after: str | None = None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> PageParams:
    return PageParams(limit=limit, starting_after=starting_after)


def make_page(
    rows: Sequence[R], limit: int, shape: Callable[[R], T], key: Callable[[R], Any]
) -> Page[T]:
    """Shape a page from `limit + 1` fetched rows (the extra row only tells there is more)."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page[Any](
        data=[shape(r) for r in rows],
        has_more=has_more,
        next_cursor=str(key(rows[-1])) if has_more and rows else None,
    )
