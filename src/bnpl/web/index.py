"""`/`: where a person who ran `make run` starts (the pages, the API docs)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from bnpl.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index(request: Request) -> Response:
    return render(request, None, "index.html", title="BNPL platform")
