"""The JSON side of the pages: `redirect_url` on checkouts, publishable keys, the widget's
offers (read-only, public), and what a publishable key cannot do."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.support import Api, assert_problem, bearer


async def test_checkouts_answer_a_redirect_url_to_the_hosted_page(api: Api) -> None:
    shop = await api.active_merchant()
    made = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
    )
    assert made.status_code == 201, made.text
    url = made.json()["redirect_url"]
    assert re.fullmatch(rf"http://bnpl\.test/checkout/{made.json()['id']}\?token=[\w-]+", url)
    again = await api.client.get(f"/v1/checkouts/{made.json()['id']}", headers=shop.headers)
    assert again.json()["redirect_url"] == url
    page = await api.client.get(urlsplit(url).path, params=parse_qs(urlsplit(url).query))
    assert page.status_code == 200 and "$50.00" in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    wrong = await api.client.get(urlsplit(url).path, params={"token": "x" + url[-10:]})
    assert wrong.status_code == 404
    schema = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    assert "redirect_url" in schema["CheckoutOut"]["properties"]


async def test_publishable_keys_read_offers_and_nothing_else(api: Api) -> None:
    shop = await api.active_merchant(config={"plans": ["pay_in_4", "monthly_6"]})
    made = await api.client.post(f"/v1/merchants/{shop.id}/publishable_keys", headers=api.operator)
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("pk_test_")
    listed = await api.client.get(f"/v1/merchants/{shop.id}/publishable_keys", headers=shop.headers)
    assert [k["key"] for k in listed.json()["data"]] == [key]
    other = await api.active_merchant()
    hidden = await api.client.get(
        f"/v1/merchants/{shop.id}/publishable_keys", headers=other.headers
    )
    assert_problem(hidden, 404)

    offers = await api.client.get(
        "/widget/v1/offers", params={"key": key, "amount": "5000", "currency": "USD"}
    )
    assert offers.status_code == 200, offers.text
    assert offers.headers["access-control-allow-origin"] == "*"
    body = offers.json()
    assert [p["plan"] for p in body["plans"]] == ["pay_in_4", "monthly_6"]
    assert body["message"] == [
        "or 4 interest-free payments of $12.50",
        "or from $8.33/mo at 0% APR",
    ]

    # Not a credential of the API.
    for path in ("/v1/checkouts", f"/v1/merchants/{shop.id}"):
        assert_problem(await api.client.get(path, headers=bearer(key)), 401, "unauthenticated")

    revoked = await api.client.delete(
        f"/v1/merchants/{shop.id}/publishable_keys/{made.json()['id']}", headers=api.operator
    )
    assert revoked.status_code == 204
    gone = await api.client.get(
        "/widget/v1/offers", params={"key": key, "amount": "5000", "currency": "USD"}
    )
    assert_problem(gone, 401, "unauthenticated")


async def test_the_widget_script_is_served_at_its_versioned_path(api: Api) -> None:
    script = await api.client.get("/widget/v1/bnpl.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in script.text and "sk_" not in script.text
