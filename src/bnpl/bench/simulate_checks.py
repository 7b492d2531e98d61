"""What `bnpl simulate` checks at the end of a run, from the outside (public HTTP API only).

- `plan_problems`: one plan as `GET /v1/plans/{id}` shows it, against DOMAIN.md's rules and
  against what the simulator itself did to it (amount authorized, partial capture, refunds):
  installment principals sum to the plan's principal; the principal is what was financed less
  everything applied to the plan; amounts add up per installment; the outstanding balance is
  what is unpaid; the schedule's due dates (and, untouched by refunds, its amounts); payments
  applied oldest first; late fees capped and charged on time; the status agrees with the
  installments. Pure: unit-testable without a platform.
- `settlement_problems`: every settlement nets as API.md says, and the settlements of the
  run's merchants add up to exactly what the simulator captured, refunded and was charged.
- `verify`: those two, plus `GET /v1/ledger/verify`, `GET /v1/audit/verify`, an event for
  every capture and plan, the gateway simulator's charges against the payments that succeeded
  (a sample of consumers: nothing charged twice), and no unexpected answer to any request.

Arithmetic is written here again on purpose, independently of the platform's own code:
checking the platform against itself would prove nothing.
"""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
import random
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar

import orjson

from bnpl.bench.http import Answer, JsonApi
from bnpl.bench.simulate_traffic import Shopper, Simulator

T = TypeVar("T")

# DOMAIN.md defaults (the platform can be configured otherwise; the checks assume it is not).
GRACE_DAYS: Final = 10
LATE_FEE_CAP_BPS: Final = 2_500
CHARGE_OFF_DAYS: Final = 120
AUTHORIZATION_DAYS: Final = 7

OPEN: Final = frozenset({"scheduled", "late"})
PLAN_OPEN: Final = frozenset({"active", "delinquent"})


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Expected:
    """What the simulator knows of a plan: the plan kind, the amount it authorized, what was
    applied to the plan (a partial capture's release and refunds, as their answers said),
    whether it was voided, and whether it was left uncaptured long enough ago that its
    authorization must have expired."""

    kind: str
    authorized: int
    applied_to_plan: int
    voided: bool = False
    expired: bool = False


def add_months(d: date, months: int) -> date:
    """`d` plus calendar months, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _due_dates(kind: str, authorized_on: date) -> list[date] | None:
    if kind == "pay_in_4":
        return [authorized_on + timedelta(days=14 * k) for k in range(4)]
    if kind in ("monthly_6", "monthly_12"):
        n = 6 if kind == "monthly_6" else 12
        return [add_months(authorized_on, k) for k in range(1, n + 1)]
    return None


def _principals(kind: str, principal: int, apr_bps: int) -> list[int] | None:
    """The schedule's principals for an untouched plan (None: not checked, interest > 0)."""
    if kind == "pay_in_4":
        quarter = principal // 4
        return [principal - 3 * quarter, quarter, quarter, quarter]
    if kind in ("monthly_6", "monthly_12") and apr_bps == 0:
        n = 6 if kind == "monthly_6" else 12
        share = principal // n
        return [principal - (n - 1) * share] + [share] * (n - 1)
    return None


def plan_problems(plan: Mapping[str, Any], expected: Expected, today: date) -> list[str]:
    """Everything wrong with one plan (empty when it keeps every rule); `today` is the
    business date the run ended on."""
    problems: list[str] = []

    def bad(message: str) -> None:
        problems.append(f"{plan['id']}: {message}")

    installments: Sequence[Mapping[str, Any]] = sorted(plan["installments"], key=lambda i: i["seq"])
    status = plan["status"]
    principal, original = plan["principal"], plan["original_principal"]

    # Sums (DOMAIN.md "Plans": principals sum to the plan's principal, always).
    if sum(i["principal"] for i in installments) != principal:
        bad(
            f"installment principals sum to {sum(i['principal'] for i in installments)}, "
            f"the plan's principal is {principal}"
        )
    if original != expected.authorized:
        bad(f"original principal {original}, the checkout authorized {expected.authorized}")
    # A canceled plan (void, expired authorization) keeps only the principal that was paid.
    untouched = expected.applied_to_plan == 0 and status != "canceled"
    if status != "canceled" and principal != original - expected.applied_to_plan:
        bad(
            f"principal {principal}, expected {original} - {expected.applied_to_plan} applied "
            "by refunds and releases"
        )
    unpaid = 0
    for i in installments:
        seq = i["seq"]
        if i["amount_due"] != i["principal"] + i["interest"] + i["fees"]:
            bad(
                f"installment {seq}: amount_due {i['amount_due']} is not principal + interest "
                "+ fees"
            )
        if not 0 <= i["amount_paid"] <= i["amount_due"]:
            bad(f"installment {seq}: paid {i['amount_paid']} of {i['amount_due']}")
        if i["status"] == "paid" and i["amount_paid"] != i["amount_due"]:
            bad(f"installment {seq} is paid with {i['amount_paid']} of {i['amount_due']}")
        if i["status"] == "late" and i["amount_paid"] >= i["amount_due"]:
            bad(f"installment {seq} is late but fully paid")
        if i["status"] in OPEN:
            unpaid += i["amount_due"] - i["amount_paid"]
    if plan["outstanding_balance"] != unpaid:
        bad(f"outstanding balance {plan['outstanding_balance']}, unpaid installments {unpaid}")

    # The schedule (DOMAIN.md "pay_in_4 schedule", "Monthly schedule").
    authorized_on = datetime.fromisoformat(plan["created_at"]).date()
    dates = _due_dates(expected.kind, authorized_on)
    if plan["plan"] != expected.kind:
        bad(f"plan {plan['plan']}, the consumer chose {expected.kind}")
    elif dates is not None:
        shown = [date.fromisoformat(i["due_date"]) for i in installments]
        if shown != dates:
            bad(
                f"due dates {[d.isoformat() for d in shown]}, expected "
                f"{[d.isoformat() for d in dates]}"
            )
        amounts = _principals(expected.kind, original, plan["apr_bps"])
        principals = [i["principal"] for i in installments]
        if untouched and amounts is not None and principals != amounts:
            bad(f"principals {principals}, expected {amounts}")

    # Payments go to the oldest unpaid installment first (DOMAIN.md "Collections").
    owing = None
    for i in installments:
        if i["status"] == "canceled":
            continue
        if owing is not None and i["amount_paid"] > 0:
            bad(f"installment {i['seq']} has payments while installment {owing} is unpaid")
            break
        if i["amount_paid"] < i["amount_due"] and owing is None:
            owing = i["seq"]

    # Late fees: capped at 25% of the original principal, and charged once the grace is over.
    if plan["late_fees_total"] > original * LATE_FEE_CAP_BPS // 10_000:
        bad(f"late fees {plan['late_fees_total']} exceed 25% of {original}")
    if sum(i["fees"] for i in installments if i["status"] != "canceled") > plan["late_fees_total"]:
        bad("installment fees exceed the late fees charged")
    if status in PLAN_OPEN:
        for i in installments:
            overdue = (today - date.fromisoformat(i["due_date"])).days
            unpaid_scheduled = i["status"] == "scheduled" and i["amount_paid"] < i["amount_due"]
            # One day of slack: the late-fee run is due at the start of its day.
            if unpaid_scheduled and overdue > GRACE_DAYS:
                bad(f"installment {i['seq']} unpaid {overdue} days after its due date, not late")
            if i["status"] in OPEN and overdue > CHARGE_OFF_DAYS:
                bad(f"installment {i['seq']} {overdue} days past due and not charged off")

    # The status agrees with the installments (DOMAIN.md "Late fees and delinquency").
    late = [i["seq"] for i in installments if i["status"] == "late"]
    if status == "active" and late:
        bad(f"active with late installments {late}")
    if status == "delinquent" and not late:
        bad("delinquent without a late installment")
    if status in PLAN_OPEN and unpaid == 0:
        bad(f"{status} with nothing left to pay")
    if status in ("paid_off", "refunded", "canceled") and unpaid != 0:
        bad(f"{status} with {unpaid} unpaid")
    if expected.voided and status != "canceled":
        bad(f"voided, but the plan is {status}")
    if expected.expired and status != "canceled":
        bad(f"its authorization expired, but the plan is {status}")
    return problems


def fee_of(captured: int, mdr_bps: int, fixed_fee: int) -> int:
    """DOMAIN.md: round_half_up(C * mdr_bps / 10000) + fixed_fee, in integers."""
    return (captured * mdr_bps + 5_000) // 10_000 + fixed_fee


@dataclass(frozen=True, slots=True)
class MerchantBook:
    """What the simulator did with one merchant: captures, refunds and the fees owed."""

    captured: int = 0
    refunded: int = 0
    fees: int = 0


def settlement_problems(
    settlements: Iterable[Mapping[str, Any]], books: Mapping[str, MerchantBook]
) -> list[str]:
    """Each settlement nets (`net = captured - refunded - fees + carried_over`, carried over
    never positive), and per merchant the settlements sum to the simulator's own book."""
    problems: list[str] = []
    sums: dict[str, list[int]] = {m: [0, 0, 0] for m in books}
    for s in settlements:
        net = s["captured"] - s["refunded"] - s["fees"] + s["carried_over"]
        if s["net"] != net or s["carried_over"] > 0:
            problems.append(
                f"{s['id']}: net {s['net']} != {s['captured']} - {s['refunded']} - {s['fees']} "
                f"+ {s['carried_over']}"
            )
        if s["merchant_id"] in sums:
            found = sums[s["merchant_id"]]
            found[0] += s["captured"]
            found[1] += s["refunded"]
            found[2] += s["fees"]
    for merchant, book in books.items():
        captured, refunded, fees = sums[merchant]
        if (captured, refunded, fees) != (book.captured, book.refunded, book.fees):
            problems.append(
                f"{merchant}: settled captured/refunded/fees {captured}/{refunded}/{fees}, "
                f"the simulator's book {book.captured}/{book.refunded}/{book.fees}"
            )
    return problems


def report_total(csv_text: str) -> int:
    """The sum of a settlement report's `amount` column (signed minor units)."""
    return sum(int(row["amount"]) for row in csv.DictReader(io.StringIO(csv_text)))


# ------------------------------------------------------------------------------ over HTTP

SAMPLE_CONSUMERS: Final = 100  # consumers whose card charges are compared with the gateway's
SAMPLE_REPORTS: Final = 20  # settlement reports whose lines are summed
SHOWN: Final = 5  # problems shown per check


def _check(name: str, problems: Sequence[str], fine: str) -> Check:
    if not problems:
        return Check(name, True, fine)
    shown = "; ".join(problems[:SHOWN])
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return Check(name, False, f"{len(problems)} problem(s): {shown}{more}")


async def _gather(sim: Simulator, calls: Iterable[Awaitable[T]]) -> list[T]:
    async def one(call: Awaitable[T]) -> T:
        async with sim.gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def ledger_check(api: JsonApi) -> Check:
    answer = await api.call("GET", "/v1/ledger/verify", api.operator, route="GET /v1/ledger/verify")
    if answer.status != 200:
        return Check("ledger", False, f"GET /v1/ledger/verify answered {answer.status}")
    failed = [f"{c['name']}: {c['detail']}" for c in answer.body["checks"] if not c["ok"]]
    names = ", ".join(c["name"] for c in answer.body["checks"])
    if answer.body["ok"] and not failed:
        return Check("ledger", True, f"{len(answer.body['checks'])} checks hold ({names})")
    return _check("ledger", failed or ["verify answered ok: false"], "")


async def audit_check(api: JsonApi) -> Check:
    answer = await api.call("GET", "/v1/audit/verify", api.operator, route="GET /v1/audit/verify")
    if answer.status != 200:
        return Check("audit chain", False, f"GET /v1/audit/verify answered {answer.status}")
    if answer.body["ok"]:
        return Check("audit chain", True, f"{answer.body['records']:,} records chain")
    broken = orjson.dumps(answer.body.get("broken_at")).decode()
    return Check("audit chain", False, f"broken after {answer.body['records']:,} records: {broken}")


async def plans_check(sim: Simulator, last_day: int) -> tuple[Check, Counter[str]]:
    """Every plan the run made, as `GET /v1/plans/{id}` shows it (`plan_problems`)."""
    api, today = sim.api, sim.today
    financed = sorted((p for p in sim.by_plan.values()), key=lambda p: p.number)

    async def fetch(plan_id: str) -> Answer:
        return await api.call("GET", f"/v1/plans/{plan_id}", api.operator, route="GET /v1/plans")

    answers = await _gather(sim, (fetch(str(p.plan_id)) for p in financed))
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    for p, answer in zip(financed, answers, strict=True):
        if answer.status != 200 or today is None:
            problems.append(f"{p.plan_id}: GET answered {answer.status}")
            continue
        statuses[answer.body["status"]] += 1
        expected = Expected(
            kind=p.kind,
            authorized=p.amount,
            applied_to_plan=p.applied_to_plan,
            voided=p.status == "voided",
            expired=p.status == "authorized" and last_day - p.day > AUTHORIZATION_DAYS + 1,
        )
        problems.extend(plan_problems(answer.body, expected, today))
    problems.extend(sim.refund_problems)
    fine = f"{len(financed):,} plans keep every rule"
    return _check("plan invariants", problems, fine), statuses


def merchant_books(sim: Simulator) -> dict[str, MerchantBook]:
    """Per merchant: what the run captured and refunded, and the fees those captures cost."""
    sums: dict[str, list[int]] = {m: [0, 0, 0] for m in sim.merchant_ids}
    for p in sim.purchases.values():
        merchant = sim.merchant_ids[p.merchant]
        config = sim.merchant_config.get(merchant, {})
        book = sums[merchant]
        if p.captured:
            book[0] += p.captured
            book[2] += fee_of(p.captured, config.get("mdr_bps", 0), config.get("fixed_fee", 0))
        book[1] += p.refunded
    return {m: MerchantBook(*v) for m, v in sums.items()}


async def settlements_check(sim: Simulator) -> tuple[Check, Counter[str]]:
    api = sim.api

    async def of(merchant_id: str) -> list[Any]:
        return await api.pages(
            f"/v1/settlements?merchant_id={merchant_id}", api.operator, route="GET /v1/settlements"
        )

    found = [s for page in await _gather(sim, map(of, sim.merchant_ids)) for s in page]
    problems = settlement_problems(found, merchant_books(sim))
    statuses = Counter(s["status"] for s in found)

    async def report(settlement: Mapping[str, Any]) -> str | None:
        path = f"/v1/settlements/{settlement['id']}/report.csv"
        status, raw = await api.http.send("GET", path, api.operator)
        if status != 200:
            return f"{settlement['id']}: report answered {status}"
        total = report_total(bytes(raw).decode())
        if total != settlement["net"]:
            return f"{settlement['id']}: report lines sum to {total}, net {settlement['net']}"
        return None

    latest = sorted(found, key=lambda s: s["id"])[-SAMPLE_REPORTS:]
    problems += [p for p in await _gather(sim, map(report, latest)) if p]
    book = merchant_books(sim)
    captured = sum(b.captured for b in book.values())
    fine = (
        f"{len(found):,} settlements net right and reconcile to the cent with the run "
        f"({money(captured)} captured, {money(sum(b.refunded for b in book.values()))} refunded, "
        f"{money(sum(b.fees for b in book.values()))} fees); {len(latest)} reports sum to net"
    )
    return _check("settlements", problems, fine), statuses


def events_check(sim: Simulator) -> Check:
    """The outbox delivered an event for every change the run made and saw."""
    captured = sum(1 for p in sim.purchases.values() if p.captured)
    authorized = len(sim.by_plan)
    counts = sim.event_counts
    problems = []
    if counts["checkout.captured"] != captured:
        problems.append(
            f"{counts['checkout.captured']} checkout.captured events, {captured} captures"
        )
    if counts["plan.created"] != authorized:
        problems.append(f"{counts['plan.created']} plan.created events, {authorized} plans")
    fine = f"{sim.events_read:,} events read; one per capture and per plan"
    return _check("events", problems, fine)


async def gateway_check(sim: Simulator) -> Check:
    """Nothing charged twice: for a sample of consumers, what the gateway simulator says it
    charged their cards equals the card payments the platform says succeeded."""
    api = sim.api
    buyers = [s for s in sim.shoppers if any(sim.purchases[c].plan_id for c in s.purchases)]
    rng = random.Random(f"{sim.seed_value}/sample")
    sample = rng.sample(buyers, min(len(buyers), SAMPLE_CONSUMERS))

    async def compare(s: Shopper) -> str | None:
        charged = 0
        for method in {s.seeded_method, s.good_method, s.lost_method} - {None}:
            answer = await api.call(
                "GET",
                f"/v1/sandbox/gateway/charges?payment_method_id={method}",
                api.operator,
                route="GET /v1/sandbox/gateway/charges",
            )
            if answer.status != 200:
                return f"{s.id}: gateway charges answered {answer.status}"
            charged += sum(c["amount"] for c in answer.body["data"])
        paid = 0
        for checkout_id in s.purchases:
            plan_id = sim.purchases[checkout_id].plan_id
            if plan_id is None:
                continue
            for payment in await api.pages(
                f"/v1/payments?plan_id={plan_id}", api.operator, route="GET /v1/payments"
            ):
                if payment["kind"] != "refund" and payment["status"] == "succeeded":
                    paid += payment["amount"]
        if charged != paid:
            return f"{s.id}: the gateway charged {charged}, payments succeeded for {paid}"
        return None

    problems = [p for p in await _gather(sim, map(compare, sample)) if p]
    fine = f"{len(sample)} consumers: the gateway charged exactly the payments that succeeded"
    return _check("gateway charges", problems, fine)


async def notifications_seen(sim: Simulator) -> dict[str, Any]:
    """What a sample of consumers was sent (templates, statuses): shown, not checked (sends
    are asynchronous and a provider may refuse one)."""
    api = sim.api
    buyers = [s for s in sim.shoppers if s.purchases]
    sample = random.Random(f"{sim.seed_value}/notifications").sample(
        buyers, min(len(buyers), SAMPLE_CONSUMERS)
    )

    async def of(s: Shopper) -> list[Any]:
        return await api.pages(
            f"/v1/notifications?consumer_id={s.id}", api.operator, route="GET /v1/notifications"
        )

    sent = [n for page in await _gather(sim, map(of, sample)) for n in page]
    return {
        "consumers": len(sample),
        "by_template": dict(Counter(n["template"] for n in sent).most_common()),
        "by_status": dict(Counter(n["status"] for n in sent).most_common()),
        "failures": dict(
            Counter(
                f"{n['channel']}: {n['error']}" for n in sent if n["status"] == "failed"
            ).most_common()
        ),
    }


def requests_check(api: JsonApi) -> Check:
    problems = [f"{count} x {what}" for what, count in api.errors.most_common()]
    return _check("requests", problems, f"{api.sent:,} requests, no unexpected answer")


async def verify(sim: Simulator, last_day: int) -> tuple[list[Check], dict[str, Any]]:
    """Every check of the end of a run, and what is shown beside them."""
    ledger, audit = await asyncio.gather(ledger_check(sim.api), audit_check(sim.api))
    plans, plan_statuses = await plans_check(sim, last_day)
    settlements, settlement_statuses = await settlements_check(sim)
    gateway = await gateway_check(sim)
    seen = {
        "plans_by_status": dict(plan_statuses.most_common()),
        "settlements_by_status": dict(settlement_statuses.most_common()),
        "notifications_sample": await notifications_seen(sim),
    }
    checks = [ledger, audit, plans, settlements, events_check(sim), gateway]
    checks.append(requests_check(sim.api))  # last: counts the checks' own requests too
    return checks, seen


def money(minor: int) -> str:
    """Minor units as `1,234.56` (integers only)."""
    whole, cents = divmod(abs(minor), 100)
    return f"{'-' if minor < 0 else ''}{whole:,}.{cents:02d}"
