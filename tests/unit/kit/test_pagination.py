from __future__ import annotations

from typing import Any

from bnpl.kit.pagination import Page, PageParams, make_page, page_params


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"itm_{i}", "v": i} for i in range(n)]


def shape(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "value": row["v"] * 10}


def test_more_rows_than_the_limit() -> None:
    page = make_page(rows(4), 3, shape, lambda r: r["id"])  # fetched limit + 1
    assert page.data == [{"id": f"itm_{i}", "value": i * 10} for i in range(3)]
    assert page.has_more is True
    assert page.next_cursor == "itm_2"  # the last one shown, for `starting_after`


def test_last_page() -> None:
    for n in (3, 1):
        page = make_page(rows(n), 3, shape, lambda r: r["id"])
        assert len(page.data) == n
        assert (page.has_more, page.next_cursor) == (False, None)


def test_empty_page() -> None:
    page = make_page([], 20, shape, lambda r: r["id"])
    assert page.model_dump() == {"data": [], "has_more": False, "next_cursor": None}


def test_wire_shape() -> None:
    page: Page[dict[str, Any]] = make_page(rows(2), 1, shape, lambda r: r["id"])
    assert page.model_dump(mode="json") == {
        "data": [{"id": "itm_0", "value": 0}],
        "has_more": True,
        "next_cursor": "itm_0",
    }


async def test_params_defaults() -> None:
    assert await page_params() == PageParams(limit=20, starting_after=None)
    assert await page_params(limit=100, starting_after="chk_1") == PageParams(
        limit=100, starting_after="chk_1"
    )
