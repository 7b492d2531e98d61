"""What the pages show: money and rates formatted at the edge, amounts typed by people, the
widget's message, decline reasons in words."""

from __future__ import annotations

from datetime import date

from bnpl.web import present


def test_money_is_formatted_from_minor_units_without_floats() -> None:
    assert present.money(1250, "USD") == "$12.50"
    assert present.money(123456789, "EUR") == "€1,234,567.89"
    assert present.money(-5, "GBP") == "-£0.05"
    assert present.money(0, "CAD") == "CA$0.00"


def test_rates_and_days() -> None:
    assert [present.percent(b) for b in (0, 5, 1500, 1990, 1999)] == [
        "0%",
        "0.05%",
        "15%",
        "19.9%",
        "19.99%",
    ]
    assert present.day("2027-02-28") == "Feb 28, 2027"


def test_amounts_typed_by_people() -> None:
    assert present.parse_amount("12.50") == 1250
    assert present.parse_amount("$1,012.5") == 101250
    assert present.parse_amount(" 7 ") == 700
    for bad in ("", "1.234", "abc", "1,00", "-3", "1e3"):
        assert present.parse_amount(bad) is None, bad


def test_the_widget_message_comes_from_the_schedules() -> None:
    today = date(2026, 12, 5)
    # installment amounts as checkout.plan_options gives them (installment_amount_preview)
    offers = [
        present.offer("pay_in_4", 5_001, 0, 1_250, today),
        present.offer("monthly_6", 5_001, 1999, 883, today),
        present.offer("monthly_12", 5_001, 1999, 463, today),
    ]
    assert offers[0].lines[0].amount == 1_251  # the remainder cent goes first
    assert offers[0].total == 5_001 and offers[0].interest == 0
    assert offers[2].total == sum(line.amount for line in offers[2].lines) > 5_001
    assert present.promo_lines(offers, "USD") == [
        "or 4 interest-free payments of $12.50",
        "or from $4.63/mo at 19.99% APR",
    ]
    assert present.promo_lines(offers[1:], "USD") == ["or from $4.63/mo at 19.99% APR"]


def test_decline_reasons_in_words() -> None:
    assert present.reason("insufficient_credit_limit").startswith("This purchase is more")
    assert present.reason("something_new") == "Something new."


def test_only_web_urls_are_followed() -> None:
    assert present.web_url("https://shop.example/ok") == "https://shop.example/ok"
    for bad in ("javascript:alert(1)", "//evil.example", "data:text/html,x", "", None):
        assert present.web_url(bad) is None
