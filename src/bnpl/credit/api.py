"""Credit endpoints (credit decisions come with the checkout flow)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["credit"])
