"""Notifications over HTTP with the sandbox clock (API.md "Notifications"): what a consumer is
told and on which channel, the email really delivered over SMTP (the sandbox's SMTP server),
SMS and push at their simulators, the reminder 3 days before a due date."""

from __future__ import annotations

from email import message_from_string
from email.message import Message
from typing import Any

from bnpl.config import Settings
from tests.conftest import isolated_platform
from tests.e2e.checkout.helpers import Flow
from tests.e2e.collections.helpers import advance, pay, purchase
from tests.support import Api, ConsumerHandle, assert_problem, http_server

SOFT_AFTER_FIRST = "4000000000000341"


async def mine(api: Api, consumer: ConsumerHandle) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/v1/me/notifications", params={"limit": 100}, headers=consumer.headers
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def sent(notes: list[dict[str, Any]], template: str) -> set[str]:
    """The channels a template went out on."""
    return {n["channel"] for n in notes if n["template"] == template and n["status"] == "sent"}


async def mailbox(api: Api, email: str) -> list[Message]:
    rows = await api.rt.db.fetch(
        "SELECT message FROM sandbox.emails WHERE $1 = ANY(rcpt_to) ORDER BY id", email
    )
    return [message_from_string(r["message"]) for r in rows]


async def texts(api: Api, recipient: str, channel: str) -> list[str]:
    rows = await api.rt.db.fetch(
        "SELECT body FROM sandbox.messages WHERE recipient = $1 AND channel = $2 ORDER BY "
        "created_at",
        recipient,
        channel,
    )
    return [r["body"] for r in rows]


async def test_a_purchase_from_approval_to_paid_off(quiet_api: Api) -> None:
    api = quiet_api
    consumer = await api.consumer()
    sale = await purchase(api, consumer=consumer, amount=40_000)
    await advance(api, "PT1S")
    notes = await mine(api, consumer)
    assert sent(notes, "checkout_approved") == {"email", "push"}
    assert sent(notes, "payment_receipt") == {"email"}  # the down payment
    assert all(n["id"].startswith("ntf_") and n["sent_at"] for n in notes)
    mails = await mailbox(api, consumer.email)
    approved = [m for m in mails if m["Subject"] == "Your purchase is approved"]
    assert len(approved) == 1
    body = approved[0].get_payload()
    assert "400.00 USD" in str(body) and "Pay in 4" in str(body)
    assert any("approved" in t for t in await texts(api, consumer.id, "push"))

    # 3 days before installment 2 falls due: a reminder, on every channel.
    await advance(api, "P11D")
    notes = await mine(api, consumer)
    assert sent(notes, "payment_reminder") == {"email", "sms", "push"}
    [sms] = await texts(api, "+14155550100", "sms") or [""]
    assert "100.00 USD" in sms
    assert sum(n["template"] == "payment_reminder" for n in notes) == 3  # once per channel

    await advance(api, "P10D")  # installment 2 collected on day 14
    r = await pay(api, consumer, sale["plan_id"], "payoff", sale["pm"])
    assert r.status_code == 201, r.text
    await advance(api, "P30D")  # past the due dates of installments 3 and 4
    notes = await mine(api, consumer)
    assert sent(notes, "plan_paid_off") == {"email", "push"}
    receipts = [n for n in notes if n["template"] == "payment_receipt"]
    assert len(receipts) == 3  # the down payment, installment 2, the payoff
    # Installments 3 and 4 were paid before their reminders were due: none was sent.
    assert sum(n["template"] == "payment_reminder" for n in notes) == 3
    r = await api.client.get(
        "/v1/notifications",
        params={"consumer_id": consumer.id, "limit": 100},
        headers=api.operator,
    )
    assert [n["id"] for n in r.json()["data"]] == [n["id"] for n in notes]


async def test_declines_failed_payments_and_late_fees(quiet_api: Api) -> None:
    api = quiet_api
    flow = Flow(api)
    poor = await flow.buyer(credit_limit=5_000)
    r = await flow.confirm_response(
        poor, (await flow.create(await api.active_merchant(), 40_000))["id"], "pay_in_4"
    )
    assert r.json()["status"] == "declined"
    await advance(api, "PT1S")
    notes = await mine(api, poor.handle)
    assert sent(notes, "checkout_declined") == {"email"}
    [mail] = [
        m for m in await mailbox(api, poor.handle.email) if "not approved" in str(m.get_payload())
    ]
    assert "credit limit" in str(mail.get_payload()).replace("_", " ")

    consumer = await api.consumer(phone="+14155550000")  # the SMS simulator refuses it
    await purchase(api, consumer=consumer, amount=20_000, card=SOFT_AFTER_FIRST)
    await advance(api, "P25D")  # due on day 14, declined, retried; late on day 24
    notes = await mine(api, consumer)
    assert sent(notes, "payment_failed") == {"email"}
    assert sent(notes, "late_fee_charged") == {"email"}
    failed_sms = [n for n in notes if n["channel"] == "sms"]
    assert failed_sms and all(n["status"] == "failed" for n in failed_sms)
    assert all(n["error"] == "invalid_number" for n in failed_sms)
    late = [
        m for m in await mailbox(api, consumer.email) if m["Subject"] == "A late fee was charged"
    ]
    assert len(late) == 1 and "7.00 USD" in str(late[0].get_payload())


async def test_who_may_read_notifications(quiet_api: Api) -> None:
    api = quiet_api
    consumer = await api.consumer()
    assert_problem(
        await api.client.get(
            "/v1/notifications", params={"consumer_id": consumer.id}, headers=consumer.headers
        ),
        403,
        "forbidden",
    )
    r = await api.client.get("/v1/notifications", headers=api.operator)
    assert r.status_code in (400, 422)
    assert_problem(
        await api.client.get("/v1/me/notifications", headers=api.operator), 403, "forbidden"
    )


async def test_email_to_an_smtp_server_that_is_down_is_retried_then_failed(
    postgres_server: str, settings: Settings
) -> None:
    async with http_server(lambda _: b"") as (url, _seen):
        pass  # a port where nothing listens any more
    dead = url.replace("http://", "smtp://")
    async with isolated_platform(
        postgres_server, settings, scheduler_interval_s=3600.0, smtp_url=dead
    ) as api:
        consumer = await api.consumer()
        await purchase(api, consumer=consumer, amount=10_000)
        await advance(api, "PT1S")
        [email] = [
            n
            for n in await mine(api, consumer)
            if n["template"] == "checkout_approved" and n["channel"] == "email"
        ]
        assert (email["status"], email["sent_at"]) == ("queued", None)
        assert email["error"]
        [push] = [
            n
            for n in await mine(api, consumer)
            if n["template"] == "checkout_approved" and n["channel"] == "push"
        ]
        assert push["status"] == "sent"  # the other channels do not wait for email
        await advance(api, "PT2H")  # retried after 1 min, 10 min and 1 hour
        [email] = [n for n in await mine(api, consumer) if n["id"] == email["id"]]
        assert email["status"] == "failed" and email["sent_at"] is None
        attempts = await api.rt.db.fetchval(
            "SELECT attempts FROM notifications.notifications WHERE id = $1", email["id"]
        )
        assert attempts == 4
