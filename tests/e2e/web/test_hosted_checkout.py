"""A shopper buys from the demo shop: the widget's message and button, then the hosted
checkout (sign up, card, plans with their schedules, confirm) and back to the shop; a
declined shopper reads the reasons."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.conftest import ADMIN_TOKEN
from tests.e2e.web.conftest import Visit
from tests.e2e.web.shopper import add_card, amortized_payment, buy_from_shop, dollars, sign_up
from tests.support import Api

TENT = 40_000
APR_BPS = 1999  # the demo shop's monthly APR


async def test_widget_shows_the_merchants_plans_without_touching_the_page(visit: Visit) -> None:
    await visit.goto("/sandbox/shop")
    tent = visit.page.get_by_test_id("product-tent").locator("bnpl-promo")
    monthly = amortized_payment(TENT, APR_BPS, 12)
    await expect(tent).to_contain_text("or 4 interest-free payments of $100.00")
    await expect(tent).to_contain_text(f"or from {dollars(monthly)}/mo at 19.99% APR")
    mug = visit.page.get_by_test_id("product-mug").locator("bnpl-promo")
    await expect(mug).to_contain_text("or 4 interest-free payments of $6.00")
    await expect(mug).not_to_contain_text("/mo")  # $24 is below the monthly plans' minimum
    kayak = visit.page.get_by_test_id("product-kayak").locator("bnpl-promo")
    await expect(kayak).to_contain_text(
        f"or from {dollars(amortized_payment(240_000, APR_BPS, 12))}/mo"
    )
    await expect(kayak).not_to_contain_text("interest-free")  # above pay_in_4's maximum
    # The host page paints every button red in Comic Sans; the widget's stays its own.
    button = tent.get_by_role("button", name="Pay later with BNPL")
    assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(11, 92, 173)"
    host = visit.page.get_by_test_id("product-tent").get_by_role("button", name="Add to cart")
    assert await host.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(192, 57, 43)"
    await visit.check_accessibility()
    await visit.screenshot("shop")


async def test_pay_in_4_from_the_widget_to_the_account(visit: Visit) -> None:
    page = visit.page
    await buy_from_shop(visit, "tent")
    await expect(page.get_by_test_id("order-total")).to_have_text("$400.00")
    await expect(page.get_by_test_id("cancel")).to_have_attribute(
        "href", re.compile(r"/sandbox/shop$")
    )
    await visit.check_accessibility()
    await visit.screenshot("checkout-sign-in")
    await sign_up(visit)
    await add_card(visit)
    schedule = page.locator(".offer-choice").filter(has=page.get_by_test_id("plan-pay_in_4"))
    rows = schedule.locator("tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.nth(0)).to_contain_text("Today")
    for i in range(4):
        await expect(rows.nth(i)).to_contain_text("$100.00")
    await expect(page.get_by_test_id("apr-pay_in_4")).to_have_text("0%")
    await expect(page.get_by_test_id("total-pay_in_4")).to_have_text("$400.00")
    await visit.check_accessibility()
    await visit.screenshot("checkout-plans")
    await page.get_by_test_id("plan-pay_in_4").check()
    await page.get_by_role("button", name="Confirm and pay").click()

    await expect(page).to_have_url(re.compile(r"/sandbox/shop/thanks\?checkout_id=chk_"))
    await expect(page.get_by_test_id("order-status")).to_contain_text("captured")
    await expect(page.get_by_test_id("order-status")).to_contain_text("Pay in 4")
    checkout_id = page.url.split("checkout_id=")[1]
    await visit.check_accessibility()
    await visit.screenshot("shop-thanks")

    # The purchase in the consumer's account ...
    await page.get_by_role("link", name="your BNPL account").click()
    row = page.get_by_test_id("plan-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Pay in 4 · $400.00")
    await expect(row).to_contain_text("$300.00")  # the down payment was taken
    await visit.check_accessibility()
    await visit.screenshot("account")

    # ... in the merchant's dashboard ...
    await visit.goto("/sandbox/shop")
    await page.get_by_role("button", name="Open the shop's merchant dashboard").click()
    await expect(page.get_by_role("heading", name="Checkouts")).to_be_visible()
    await page.get_by_label("Go to a checkout by id").fill(checkout_id)
    await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_test_id("checkout-status")).to_have_text("captured")
    await expect(page.get_by_test_id("captured")).to_have_text("$400.00")

    # ... and in the operator's.
    await visit.goto("/ops")
    await page.get_by_label("Operator token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Live report")).to_be_visible()
    await visit.screenshot("ops-report")
    await page.get_by_label(re.compile("Find a consumer")).fill(checkout_id)
    await page.get_by_role("button", name="Look up").click()
    await expect(page.get_by_test_id("entity-status")).to_have_text("captured")
    await page.get_by_role("link", name=re.compile(r"^pln_")).first.click()
    await expect(page.get_by_test_id("entity-status")).to_have_text("active")


async def test_monthly_plan_shows_apr_and_total_cost(visit: Visit, api: Api) -> None:
    consumer = await api.consumer()  # an account already: the shopper logs in
    page = visit.page
    await buy_from_shop(visit, "tent")
    await page.locator("#login-email").fill(consumer.email)
    await page.locator("#login-password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("error")).to_have_text(
        "That email and password do not match an account."
    )
    await page.locator("#login-password").fill(consumer.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Hi Ada")).to_be_visible()
    await add_card(visit)
    payment = amortized_payment(TENT, APR_BPS, 12)
    await expect(page.get_by_test_id("apr-monthly_12")).to_have_text("19.99%")
    schedule = page.locator(".offer-choice").filter(has=page.get_by_test_id("plan-monthly_12"))
    rows = schedule.locator("tbody tr")
    await expect(rows).to_have_count(12)
    amounts = [
        int(re.sub(r"[^0-9]", "", text.split("$")[-1])) for text in await rows.all_inner_texts()
    ]
    assert amounts[:11] == [payment] * 11
    total_text = await page.get_by_test_id("total-monthly_12").inner_text()
    assert int(re.sub(r"[^0-9]", "", total_text)) == sum(amounts) > TENT
    await page.get_by_test_id("plan-monthly_12").check()
    await page.get_by_role("button", name="Confirm and pay").click()
    await expect(page).to_have_url(re.compile(r"/sandbox/shop/thanks\?checkout_id=chk_"))
    await expect(page.get_by_test_id("order-status")).to_contain_text("12 monthly payments")


async def test_declined_shopper_reads_the_reasons(visit: Visit) -> None:
    page = visit.page
    await buy_from_shop(visit, "kayak")  # $2,400: more than a new account's $1,000 limit
    await sign_up(visit)
    await add_card(visit)
    await page.get_by_test_id("plan-monthly_6").check()
    await page.get_by_role("button", name="Confirm and pay").click()
    await expect(page.get_by_role("heading", name="We can't approve this purchase")).to_be_visible()
    await expect(page.get_by_test_id("reasons")).to_have_text(
        "This purchase is more than the credit you have available."
    )
    await expect(
        page.get_by_role("link", name=re.compile("Return to Demo Outdoor Co"))
    ).to_be_visible()
    await visit.check_accessibility()
    await visit.screenshot("checkout-declined")


async def test_a_wrong_token_shows_nothing(visit: Visit) -> None:
    await buy_from_shop(visit, "mug")
    tampered = re.sub(r"token=[^&]+", "token=AAAA", visit.page.url)
    response = await visit.page.goto(tampered)
    assert response is not None and response.status == 404
    await expect(visit.page.get_by_test_id("order-total")).to_have_count(0)
