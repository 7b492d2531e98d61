"""What a shopper does in the browser, step by step (shared by the browser tests)."""

from __future__ import annotations

import re
import secrets
from fractions import Fraction

from playwright.async_api import expect

from tests.e2e.web.conftest import Visit

PASSWORD = "correct horse battery"


def amortized_payment(principal: int, apr_bps: int, months: int) -> int:
    """DOMAIN.md's A = round_half_up(P r / (1 - (1 + r)^-n)), written out again here."""
    r = Fraction(apr_bps, 10_000 * 12)
    exact = principal * r / (1 - (1 + r) ** -months)
    return int(exact * 2 + 1) // 2


def dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


async def buy_from_shop(v: Visit, product: str) -> None:
    """On the demo shop, press the widget's pay button under `product`."""
    await v.goto("/sandbox/shop")
    promo = v.page.get_by_test_id(f"product-{product}").locator("bnpl-promo")
    await promo.get_by_role("button", name="Pay later with BNPL").click()
    await expect(v.page).to_have_url(re.compile(r"/checkout/chk_\w+\?token="))


async def sign_up(v: Visit, last_name: str = "Lovelace") -> str:
    page = v.page
    email = f"shopper-{secrets.token_hex(5)}@example.com"
    await page.get_by_text("New here? Create an account").click()
    await page.get_by_label("First name").fill("Ada")
    await page.get_by_label("Last name").fill(last_name)
    await page.locator("#su-email").fill(email)
    await page.get_by_label("Mobile phone").fill("+14155550100")
    await page.get_by_label("Date of birth").fill("1990-12-10")
    await page.get_by_label("Street address").fill("1 Main St")
    await page.get_by_label("City").fill("Springfield")
    await page.get_by_label("State").fill("IL")
    await page.get_by_label("ZIP code").fill("62701")
    await page.get_by_label("Password (10 characters or more)").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Hi Ada")).to_be_visible()
    await expect(page.get_by_text("We are verifying your identity")).to_have_count(0)
    return email


async def add_card(v: Visit, number: str = "4242424242424242") -> None:
    page = v.page
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry (MM/YY)").fill("12/30")
    await page.get_by_label("CVC").fill("123")
    await page.get_by_role("button", name="Save card").click()
    await expect(page.get_by_role("heading", name="Choose how to pay")).to_be_visible()
