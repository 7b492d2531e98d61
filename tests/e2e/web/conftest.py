"""Browser tests of the platform's pages: a real HTTP server (uvicorn on a free port of
127.0.0.1, serving the suite's app) driven by Debian's chromium through Playwright.

Every page visited is checked by axe-core (vendored, `vendor/`) for serious or critical
accessibility violations, and for Content-Security-Policy violations. With
`BNPL_SCREENSHOTS=1` the tests also write the screenshots the README shows (`docs/img/`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from bnpl.bench.platform import free_port

CHROMIUM = "/usr/bin/chromium"
# Without these, chromium on a closed network waits on services it cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "img"


@pytest.fixture(scope="package")
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    """The suite's app served over real HTTP (its lifespan is the suite's)."""
    async with serve(app) as url:
        yield url


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """`app` (started already) on a free port of 127.0.0.1, over real HTTP, in this loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (one stat, before any browser)
        pytest.fail(f"{CHROMIUM} is missing: run scripts/apt-install.sh chromium (make test does)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Visit:
    """One person's browser (a context of their own: cookies, viewport)."""

    context: BrowserContext
    page: Page
    base_url: str
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    async def goto(self, path: str) -> None:
        await self.page.goto(self.url(path))

    async def check_accessibility(self) -> list[dict[str, Any]]:
        """axe-core on the page as it is: the serious and critical violations."""
        await self.page.evaluate(AXE)
        result = await self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert bad == [], f"accessibility violations on {self.page.url}: {bad}"
        return list(result)

    async def screenshot(self, name: str) -> None:
        if os.environ.get("BNPL_SCREENSHOTS"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def assert_clean(self) -> None:
        assert self.csp_violations == [], "\n".join(self.csp_violations)
        assert self.page_errors == [], self.page_errors


@pytest.fixture
async def visit(browser: Browser, base_url: str) -> AsyncIterator[Visit]:
    """A shopper on a phone-sized screen."""
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    v = Visit(context, page, base_url)

    def on_console(message: ConsoleMessage) -> None:
        # Scripts the test evaluates (axe-core) have no URL; the page's own do.
        if "Content Security Policy" in message.text and message.location.get("url"):
            v.csp_violations.append(f"{message.text} at {message.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: v.page_errors.append(str(e)))
    yield v
    await context.close()
    v.assert_clean()
