"""A merchant in its dashboard: signs in with its secret key, finds a captured checkout and
refunds part of it, adds a webhook endpoint and reads its delivery log, sees its keys."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import expect

from tests.e2e.web.conftest import Visit
from tests.support import Api


async def test_merchant_refunds_a_purchase(visit: Visit, api: Api) -> None:
    shop = await api.active_merchant()
    consumer = await api.consumer()
    card = await api.add_card(consumer)
    made = await api.client.post(
        "/v1/checkouts",
        json={"amount": 20_000, "currency": "USD", "merchant_reference": "order-77"},
        headers=shop.headers,
    )
    checkout_id = made.json()["id"]
    confirmed = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": card},
        headers=consumer.headers,
    )
    assert confirmed.json()["status"] == "authorized", confirmed.text

    page = visit.page
    await page.set_viewport_size({"width": 1280, "height": 900})
    await visit.goto("/merchant/checkouts")
    await expect(page).to_have_url(re.compile("/merchant/login"))
    await page.get_by_label("Secret API key").fill("sk_test_not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("error")).to_have_text("That is not a live secret key.")
    await page.get_by_label("Secret API key").fill(shop.secret)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("checkout-row")).to_contain_text("order-77")
    assert shop.secret not in await page.content()
    cookies = await visit.context.cookies()
    assert all(shop.secret not in c["value"] and c["httpOnly"] for c in cookies)
    await visit.check_accessibility()

    await page.get_by_role("link", name=checkout_id).click()
    await expect(page.get_by_test_id("checkout-status")).to_have_text("authorized")
    await page.get_by_role("button", name="Capture").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Captured.")
    await expect(page.get_by_test_id("captured")).to_have_text("$200.00")
    await page.get_by_label(re.compile("Amount \\(up to")).fill("50.00")
    await page.get_by_label("Reason").fill("returned_item")
    await page.get_by_role("button", name="Refund").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Refund made.")
    await expect(page.get_by_test_id("checkout-status")).to_have_text("partially refunded")
    await expect(page.get_by_test_id("refund-row")).to_contain_text("$50.00")
    await visit.check_accessibility()
    await visit.screenshot("merchant-checkout")
    after = (await api.client.get(f"/v1/checkouts/{checkout_id}", headers=shop.headers)).json()
    assert after["status"] == "partially_refunded" and after["refunded_amount"] == 5_000

    await page.get_by_role("link", name="Webhooks").click()
    await page.get_by_label("URL").fill("http://127.0.0.1:9/hooks")
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.get_by_test_id("webhook-secret")).to_have_text(re.compile("^whsec_"))
    await expect(page.get_by_test_id("endpoint-row")).to_contain_text("http://127.0.0.1:9/hooks")
    await visit.check_accessibility()
    await visit.screenshot("merchant-webhooks")
    # An event after the endpoint exists is sent to it (nothing listens on port 9).
    again = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
    )
    assert again.status_code == 201
    await page.get_by_role("link", name="http://127.0.0.1:9/hooks").click()
    await expect(page.get_by_role("heading", name=re.compile("Deliveries to"))).to_be_visible()
    for _ in range(50):
        if await page.get_by_test_id("delivery-row").count():
            break
        await asyncio.sleep(0.2)
        await page.reload()
    row = page.get_by_test_id("delivery-row").first
    await expect(row).to_contain_text("checkout.created")
    await visit.check_accessibility()
    await row.get_by_role("button", name=re.compile("Send again")).click()
    await expect(page.get_by_test_id("notice")).to_have_text("The event is being sent again.")

    await page.get_by_role("link", name="Settlements").click()
    await expect(page.get_by_role("heading", name="Settlements")).to_be_visible()
    await visit.check_accessibility()
    await page.get_by_role("link", name="Keys").click()
    await expect(page.get_by_role("heading", name=re.compile("Acme"))).to_be_visible()
    await visit.check_accessibility()

    await page.get_by_role("button", name="Sign out").click()
    await visit.goto("/merchant/checkouts")
    await expect(page).to_have_url(re.compile("/merchant/login"))
