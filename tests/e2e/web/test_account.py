"""A consumer in their account: sees the plan bought through the API, pays it off, changes
the autopay card, reads the payment history and notifications."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.e2e.web.conftest import Visit
from tests.support import Api


async def test_consumer_pays_off_a_plan(visit: Visit, api: Api) -> None:
    shop = await api.active_merchant(config={"monthly_apr_bps": 1999})
    consumer = await api.consumer()
    card = await api.add_card(consumer)
    made = await api.client.post(
        "/v1/checkouts", json={"amount": 60_000, "currency": "USD"}, headers=shop.headers
    )
    assert made.status_code == 201, made.text
    confirmed = await api.client.post(
        f"/v1/checkouts/{made.json()['id']}/confirm",
        json={"plan": "monthly_6", "payment_method_id": card},
        headers=consumer.headers,
    )
    assert confirmed.json()["status"] == "authorized", confirmed.text
    plan_id = confirmed.json()["plan_id"]

    page = visit.page
    await visit.goto("/account")
    await expect(page).to_have_url(re.compile("/account/login"))
    await page.get_by_label("Email").fill(consumer.email)
    await page.get_by_label("Password").fill("wrong password!")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("error")).to_contain_text("do not match")
    await page.get_by_label("Password").fill(consumer.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("plan-row")).to_contain_text("6 monthly payments · $600.00")
    await visit.check_accessibility()

    await page.get_by_role("link", name="6 monthly payments · $600.00").click()
    await expect(page).to_have_url(re.compile(f"/account/plans/{plan_id}"))
    await expect(page.get_by_test_id("plan-status")).to_have_text("active")
    await expect(page.get_by_test_id("outstanding")).not_to_have_text("$0.00")
    await visit.check_accessibility()
    await visit.screenshot("account-plan")

    # A second card, made the autopay card.
    await page.get_by_text("Add a card").click()
    await page.get_by_label("Card number").fill("4000000000000119")
    await page.get_by_label("Expiry (MM/YY)").fill("11/31")
    await page.get_by_label("CVC").fill("321")
    await page.get_by_role("button", name="Save card").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Your card is saved.")
    await page.get_by_label("Payments are taken on their due dates from").select_option(
        label="Visa ending in 0119"
    )
    await page.get_by_role("button", name="Use this card for autopay").click()
    await expect(page.get_by_test_id("notice")).to_have_text("Autopay now uses the card you chose.")
    plan = (await api.client.get(f"/v1/plans/{plan_id}", headers=consumer.headers)).json()
    assert plan["payment_method_id"] != card

    await page.get_by_test_id("payoff").check()
    await page.get_by_role("button", name="Pay now").click()
    await expect(page.get_by_test_id("notice")).to_have_text(
        "Thank you: your payment went through."
    )
    await expect(page.get_by_test_id("plan-status")).to_have_text("paid off")
    await expect(page.get_by_test_id("outstanding")).to_have_text("$0.00")
    await expect(page.get_by_test_id("payment-row")).to_contain_text("prepayment")
    plan = (await api.client.get(f"/v1/plans/{plan_id}", headers=consumer.headers)).json()
    assert plan["status"] == "paid_off" and plan["outstanding_balance"] == 0
    await visit.check_accessibility()

    await page.get_by_role("link", name="Notifications").click()
    await expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    await visit.check_accessibility()
    await visit.screenshot("account-notifications")


async def test_a_form_without_its_csrf_token_is_refused(visit: Visit) -> None:
    await visit.goto("/account/login")
    answer = await visit.page.request.post(
        visit.url("/account/login"), form={"email": "a@example.com", "password": "x" * 12}
    )
    assert answer.status == 403
