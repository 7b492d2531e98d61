"""The bounded contexts this image carries: their routers and their consumers/jobs.

Each context's `api` module exposes `router` (an `APIRouter`); its facade may expose
`register(rt)` (subscribes its event handlers, registers its due work, provides resolvers).
`bnpl serve --services` mounts only the named routers.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from bnpl.runtime import Runtime

# In mounting order. The router looks for a request's route through the contexts in this
# order, so the purchase path (checkout, then identity's consumer endpoints) comes first.
NAMES: tuple[str, ...] = (
    "checkout",
    "identity",
    "ops",
    "onboarding",
    "merchants",
    "credit",
    "installments",
    "payments",
    "audit",
    "messaging",
    "ledger",
    "reporting",
    "notifications",
    "sandbox",
    "web",
)


def modules() -> list[ModuleType]:
    return [import_module(f"bnpl.{name}") for name in NAMES]


def routers(services: set[str] | None = None) -> list[APIRouter]:
    found: list[APIRouter] = []
    for name in NAMES:
        if services is not None and name not in services and name != "ops":
            continue
        router: APIRouter = import_module(f"bnpl.{name}.api").router
        found.append(router)
    return found


def register_all(rt: Runtime) -> None:
    for module in modules():
        register = getattr(module, "register", None)
        if register is not None:
            register(rt)
