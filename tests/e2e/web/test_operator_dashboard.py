"""An operator finds a delinquent plan: a platform of its own (the sandbox clock moves 25
days), a pay-in-4 purchase whose card stops working after the down payment, then the
dashboard: the report counts it, the delinquent list shows it, the lookup tells its story;
the failures and verification pages hold."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from playwright.async_api import Browser, expect

from bnpl.app import create_app
from bnpl.config import Settings
from tests.conftest import ADMIN_TOKEN
from tests.e2e.web.conftest import Visit, serve
from tests.support import Api, bearer, fresh_database


@pytest.fixture(scope="module")
async def platform(postgres_server: str, settings: Settings) -> AsyncIterator[tuple[Api, str]]:
    """A platform of its own (its clock moves), served over HTTP as well."""
    async with fresh_database(postgres_server, f"bnpl_web_{os.getpid()}") as dsn:
        app = create_app(settings.model_copy(update={"database_url": dsn}))
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30), serve(app) as url:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=url) as client:
                yield Api(client, app.state.runtime, ADMIN_TOKEN), url


async def test_operator_finds_a_delinquent_plan(
    platform: tuple[Api, str], browser: Browser
) -> None:
    api, url = platform
    shop = await api.active_merchant()
    consumer = await api.consumer()
    card = await api.add_card(consumer, "4000000000000341")  # only the first charge succeeds
    made = await api.client.post(
        "/v1/checkouts", json={"amount": 40_000, "currency": "USD"}, headers=shop.headers
    )
    checkout_id = made.json()["id"]
    confirmed = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": card},
        headers=consumer.headers,
    )
    assert confirmed.json()["status"] == "authorized", confirmed.text
    plan_id = confirmed.json()["plan_id"]
    await api.client.post(f"/v1/checkouts/{checkout_id}/capture", headers=shop.headers)
    moved = await api.client.post(
        "/v1/sandbox/clock", json={"advance": "P25D"}, headers=api.operator
    )
    assert moved.status_code == 200, moved.text
    await api.settle()
    plan = (await api.client.get(f"/v1/plans/{plan_id}", headers=api.operator)).json()
    assert plan["status"] == "delinquent", plan

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    visit = Visit(context, await context.new_page(), url)
    try:
        page = visit.page
        await visit.goto("/ops")
        await expect(page).to_have_url(re.compile("/ops/login"))
        await page.get_by_label("Operator token").fill("not-the-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("error")).to_have_text("That is not the operator token.")
        await page.get_by_label("Operator token").fill(api.admin_token)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Live report")).to_be_visible()
        await expect(page.get_by_test_id("delinquent-count")).to_have_text("1")
        await visit.check_accessibility()

        await page.get_by_role("link", name="Delinquent").click()
        row = page.get_by_test_id("delinquent-row")
        await expect(row).to_have_count(1)
        await visit.screenshot("ops-delinquent")
        await expect(row).to_contain_text("delinquent")
        await expect(row).to_contain_text("$7.00")  # the late fee
        await visit.check_accessibility()
        await row.get_by_role("link", name=plan_id).click()

        await expect(page.get_by_test_id("entity-status")).to_have_text("delinquent")
        await expect(page.get_by_role("cell", name="late", exact=True)).to_have_count(1)
        await expect(page.get_by_role("heading", name="Ledger entries")).to_be_visible()
        await expect(page.get_by_role("heading", name="Audit records")).to_be_visible()
        audit = page.locator("section").filter(
            has=page.get_by_role("heading", name="Audit records")
        )
        await expect(audit).to_contain_text("checkout.authorized")
        await expect(audit).to_contain_text("payment.failed")
        events = page.locator("section").filter(has=page.get_by_role("heading", name="Events"))
        await expect(events).to_contain_text("plan.created")  # the plan's own events
        await expect(events).to_contain_text("plan.delinquent")
        await expect(events).not_to_contain_text("checkout.captured")  # its checkout's
        await expect(page.get_by_text("failed").first).to_be_visible()  # the payments
        await visit.check_accessibility()
        await visit.screenshot("ops-lookup")

        await page.get_by_role("link", name=checkout_id).click()
        await expect(page.get_by_test_id("entity-status")).to_have_text("captured")
        await expect(page.get_by_text(re.compile(r"Decision dec_\w+: approved"))).to_be_visible()
        events = page.locator("section").filter(has=page.get_by_role("heading", name="Events"))
        await expect(events).to_contain_text("checkout.captured")

        await page.get_by_role("link", name="Failures").click()
        await expect(page.get_by_role("heading", name="Dead-lettered events")).to_be_visible()
        await visit.check_accessibility()
        await page.get_by_role("link", name="Verify").click()
        await expect(page.get_by_test_id("ledger-ok")).to_have_text("All checks hold")
        await expect(page.get_by_test_id("audit-ok")).to_contain_text("records chain")
        await visit.check_accessibility()
        await visit.screenshot("ops-verify")

        # A merchant's keys: a new secret key, shown once, works at once.
        await page.get_by_label(re.compile("Find a consumer")).fill(shop.id)
        await page.get_by_role("button", name="Look up").click()
        await page.get_by_role("button", name="Issue a secret key").click()
        secret = await page.get_by_test_id("issued-secret").inner_text()
        assert secret.startswith("sk_test_") and secret != shop.secret
        mine = await api.client.get(f"/v1/merchants/{shop.id}", headers=bearer(secret))
        assert mine.status_code == 200
        await page.get_by_role("button", name="Issue a publishable key").click()
        await expect(page.get_by_test_id("issued-publishable")).to_have_text(
            re.compile("^pk_test_")
        )
        await visit.check_accessibility()

        # The merchant's side of the same 25 days: daily settlements and their reports.
        await page.get_by_role("button", name="Sign out").click()
        await visit.goto("/merchant/login")
        await page.get_by_label("Secret API key").fill(shop.secret)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("link", name="Settlements").click()
        settled = page.get_by_test_id("settlement-row")
        await expect(settled.first).to_be_visible()
        await visit.check_accessibility()
        await visit.screenshot("merchant-settlements")
        async with page.expect_download() as download:
            await settled.first.get_by_role("link", name=re.compile("^CSV")).click()
        report = (await (await download.value).path()).read_text()
        assert report.splitlines()[0] == "type,reference,checkout_id,amount,currency,created_at"
        assert checkout_id in report
    finally:
        await context.close()
    visit.assert_clean()
