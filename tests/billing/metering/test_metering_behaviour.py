"""Real-time metering beyond the worked examples (docs/charging.md; docs/api.md "Usage"): late
events and closed periods, periodically rated meters, batch order, reversal, debt from an
over-capture, hold expiry, soft limits and day windows, listing events, scopes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.metering import batch as batch_module
from billing.metering import holds as holds_service
from billing.models import Alert, Invoice, Subscription, UsageCounter, UsageEvent
from billing.periodic import subscription_period_close
from plans.models import Plan
from tests.billing.conftest import METERING_NOW
from tests.billing.scenario import available, event, grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.errors import HoldNotPending
from wallets.models import (
    Account,
    Grant,
    Hold,
    HoldAllocation,
    IdempotencyRecord,
    LedgerEntry,
    LedgerTransaction,
)
from wallets.services import HoldLeg, hold_create, holds_expire_due

D = Decimal
pytestmark = pytest.mark.django_db

JAN1 = datetime(2026, 1, 1, tzinfo=UTC)
FEB1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR1 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _currencies(db):
    """The concurrency tests flush every table (the ISO currencies too) when they end."""
    ensure_currencies()


def per_unit(meter: str, unit_price: str, **extra) -> dict:
    return {"meter": meter, "model": "per_unit", "unit_price": unit_price, **extra}


def requests_customer(api, *, overage="wallet", usd=None, customer="acme"):
    """``customer`` on plan ``flat``: meter ``requests`` (count) at 1.00 USD each."""
    if not Plan.objects.filter(code="flat").exists():
        setup_meter(api, "requests", "requests", "count")
        setup_plan(api, "flat", [per_unit("requests", "1.00")])
    setup_customer(api, external_id=customer, plan="flat", overage=overage)
    if usd is not None:
        grant(api, customer, "USD", usd, id=f"{customer}-usd")


def counter(customer: str, period_start: datetime) -> tuple:
    c = UsageCounter.objects.get(
        subscription__customer__external_id=customer, period_start=period_start
    )
    return (c.quantity, c.included, c.billable, c.amount, c.accrued, c.events)


def usage_meter(api, customer: str, at: str | None = None, meter: str | None = None) -> dict:
    path = f"/api/v1/customers/{customer}/usage"
    if at:
        path += f"?at={quote(at)}"
    r = api.get(path)
    assert r.status_code == 200, r.content
    body = r.json()
    meters = [m for m in body["meters"] if meter is None or m["meter"] == meter]
    assert len(meters) == 1, body
    return {"period": body["period"], **meters[0]}


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.content
    assert r["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code and body["status"] == status
    return body


# --- late events and closed periods ---------------------------------------------------------------


def test_late_event_of_the_previous_period_lands_in_its_counter(api, clock):
    requests_customer(api, usd="100.00")
    clock.move_to("2026-02-10T12:00:00Z")  # January is over; no period close has run
    assert Subscription.objects.get().current_period_start == JAN1

    r = event(api, "late", "acme", "requests", ts="2026-01-20T08:00:00Z")
    assert r.status_code == 201, r.content
    r = event(api, "now", "acme", "requests", ts="2026-02-10T11:00:00Z")
    assert r.status_code == 201, r.content

    assert counter("acme", JAN1) == (D(1), D(0), D(1), D(1), D(0), 1)
    assert counter("acme", FEB1) == (D(1), D(0), D(1), D(1), D(0), 1)
    assert UsageEvent.objects.get(event_id="late").period_start == JAN1
    assert UsageEvent.objects.get(event_id="now").period_start == FEB1
    january = usage_meter(api, "acme", at="2026-01-20T00:00:00Z")
    assert january["period"] == {"start": JAN1.isoformat(), "end": FEB1.isoformat()}
    assert (january["quantity"], january["amount"]) == ("1", "1")
    february = usage_meter(api, "acme")
    assert february["period"] == {"start": FEB1.isoformat(), "end": MAR1.isoformat()}
    assert (february["quantity"], february["amount"]) == ("1", "1")
    assert available(api, "acme", "USD") == D("98")


def test_allowance_of_a_later_period_is_issued_lazily_and_once(api, clock):
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [per_unit("llm_tokens", "0.01", included="100")])
    sub = setup_customer(api, plan="pro")
    grant(api, "acme", "USD", "10.00", id="g1")
    january = Grant.objects.get(purpose="allowance")
    assert (january.amount, january.expires_at) == (D(100), FEB1)

    clock.move_to("2026-02-10T12:00:00Z")  # before any period close
    r = event(api, "f1", "acme", "llm_tokens", "150", ts="2026-02-10T12:00:00Z")
    assert r.status_code == 201, r.content
    charge = r.json()["charge"]
    assert (charge["included"], charge["billable"], charge["amount"]) == (
        "100",
        "50",
        "0.500000000000",
    )
    price_id = UsageCounter.objects.get().price_id
    source = f"allowance:{sub['id']}:{price_id}:{FEB1.isoformat()}"
    february = Grant.objects.get(source=source)
    assert (february.purpose, february.amount, february.remaining, february.expires_at) == (
        "allowance",
        D(100),
        D(0),
        MAR1,
    )
    assert february.meters == ["llm_tokens"]
    assert charge["included_from"] == [{"grant": february.pk, "asset": "tokens", "amount": "100"}]
    r = event(api, "f2", "acme", "llm_tokens", "10", ts="2026-02-10T12:00:00Z")
    assert r.status_code == 201 and r.json()["charge"]["included"] == "0"
    assert Grant.objects.filter(purpose="allowance").count() == 2
    assert counter("acme", FEB1) == (D(160), D(100), D(60), D("0.6"), D(0), 2)
    january.refresh_from_db()
    assert january.remaining == D(100)  # the January allowance was not touched

    # the period close that comes later finds February's allowance issued: not twice
    assert subscription_period_close(subscription_id=sub["id"]) is not None
    assert Subscription.objects.get().current_period_start == FEB1
    assert Grant.objects.filter(source__startswith=f"allowance:{sub['id']}:").count() == 2


def finalize(invoice: Invoice) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.FINALIZED,
        number="INV-2026-000001",
        finalized_at=datetime(2026, 2, 10, 12, tzinfo=UTC),
    )


def test_a_batch_locks_its_late_events_invoice_before_any_account(api, clock):
    """A single late event and a reversal lock the period's invoice, then the wallet's
    accounts. A batch holding the accounts and then waiting for the invoice could deadlock
    with a reversal of that period, so it takes the invoice first too."""
    requests_customer(api, usd="100.00")
    clock.move_to("2026-02-10T12:00:00Z")
    subscription_period_close(subscription_id=Subscription.objects.get().pk)
    late = {"id": "late-b", "customer": "acme", "meter": "requests"}
    events = [{**late, "timestamp": "2026-01-31T23:00:00Z"}, {**late, "id": "now-b"}]

    with CaptureQueriesContext(connection) as queries:
        r = api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"]
    statements = [q["sql"] for q in queries.captured_queries]
    invoice_lock = next(
        i for i, sql in enumerate(statements) if "billing_invoice" in sql and "FOR SHARE" in sql
    )
    account_lock = next(
        i for i, sql in enumerate(statements) if "wallets_account" in sql and "FOR UPDATE" in sql
    )
    assert invoice_lock < account_lock
    assert counter("acme", JAN1)[0] == D(1)


def test_closed_period_accepts_late_events_until_its_invoice_is_finalized(api, clock):
    """The invoice issued at the end of January (``period_start`` = February 1, the boundary)
    decides: draft → January's late events are accepted; finalized → ``period_closed``."""
    requests_customer(api, usd="100.00")
    clock.move_to("2026-02-10T12:00:00Z")
    sub = Subscription.objects.get()
    invoice = subscription_period_close(subscription_id=sub.pk)
    assert (invoice.status, invoice.period_start) == ("draft", FEB1)

    r = event(api, "late1", "acme", "requests", ts="2026-01-31T23:59:59Z")
    assert r.status_code == 201, r.content
    assert counter("acme", JAN1) == (D(1), D(0), D(1), D(1), D(0), 1)

    finalize(invoice)
    before = (UsageEvent.objects.count(), LedgerEntry.objects.count())
    r = event(api, "late2", "acme", "requests", ts="2026-01-20T00:00:00Z")
    problem(r, 422, "period_closed")
    r = api.post(
        "/api/v1/holds",
        {
            "id": "late-hold",
            "customer": "acme",
            "meter": "requests",
            "timestamp": "2026-01-20T00:00:00Z",
        },
        format="json",
    )
    problem(r, 422, "period_closed")
    assert (UsageEvent.objects.count(), LedgerEntry.objects.count()) == before
    assert not Hold.objects.exists()
    assert counter("acme", JAN1) == (D(1), D(0), D(1), D(1), D(0), 1)
    # February (the current period) is open
    r = event(api, "feb", "acme", "requests", ts="2026-02-01T00:00:00Z")
    assert r.status_code == 201, r.content


def test_finalized_invoice_row_made_directly_closes_the_period(api, clock):
    """As above with the rows written by the ORM: the subscription moved to February and a
    finalized subscription invoice for the boundary of February 1."""
    requests_customer(api, usd="100.00")
    clock.move_to("2026-02-10T12:00:00Z")
    Subscription.objects.update(current_period_start=FEB1, current_period_end=MAR1)
    sub = Subscription.objects.select_related("customer").get()
    Invoice.objects.create(
        customer=sub.customer,
        subscription=sub,
        kind=Invoice.Kind.SUBSCRIPTION,
        status=Invoice.Status.FINALIZED,
        number="INV-2026-000007",
        currency_id="USD",
        period_start=FEB1,
        period_end=MAR1,
        subtotal=0,
        tax=0,
        total=0,
    )
    r = event(api, "late", "acme", "requests", ts="2026-01-15T00:00:00Z")
    body = problem(r, 422, "period_closed")
    assert "2026-01-01" in body["detail"]
    assert not UsageEvent.objects.exists()
    r = event(api, "feb", "acme", "requests", ts="2026-02-02T00:00:00Z")
    assert r.status_code == 201, r.content


# --- periodically rated meters --------------------------------------------------------------------


VOLUME = {
    "meter": "api_calls",
    "model": "volume",
    "tiers": [
        {"up_to": "10000", "unit_price": "0.01"},
        {"up_to": "100000", "unit_price": "0.008"},
        {"up_to": None, "unit_price": "0.005"},
    ],
}


def test_example_e_volume_rated_periodically(api, clock):
    """25,000 calls → 25,000 × 0.008 = 200.00. The first 10,000 go through the batch endpoint
    in 10 batches of 1,000 (accepted, nothing charged): 10,000 is the top of the first tier,
    100.00; one more call moves every call to the second tier and lowers the total to
    80.008. The last 14,999 are copies of a row the charging path wrote (only the id
    differs), because that many more calls through the API take too long on this machine.
    Usage rates them all from the period's events."""
    setup_meter(api, "api_calls", "calls", "count")
    setup_plan(api, "vol", [VOLUME])
    setup_customer(api, plan="vol", overage="invoice")
    for batch in range(10):
        events = [
            {
                "id": f"c{batch}-{i}",
                "customer": "acme",
                "meter": "api_calls",
                "timestamp": "2026-01-05T10:00:00Z",
            }
            for i in range(1000)
        ]
        r = api.post("/api/v1/events/batch", {"events": events}, format="json")
        assert r.status_code == 200, r.content
        results = r.json()["results"]
        assert [x["id"] for x in results] == [e["id"] for e in events]
        assert {(x["status"], x["code"]) for x in results} == {("accepted", None)}
        amounts = {(D(x["charge"]["amount"]), len(x["charge"]["funding"])) for x in results}
        assert amounts == {(0, 0)}
    assert not LedgerTransaction.objects.filter(kind="draw").exists()
    # the period's counter holds the running quantity its bound is checked on, no amount
    assert list(UsageCounter.objects.values_list("quantity", "amount", "accrued", "events")) == [
        (D(10000), 0, 0, 10000)
    ]
    usage = usage_meter(api, "acme")
    assert (usage["quantity"], usage["billable"], usage["amount"], usage["rating"]) == (
        "10000",
        "10000",
        "100",
        "periodic",
    )
    assert event(api, "one-more", "acme", "api_calls").status_code == 201
    assert usage_meter(api, "acme")["amount"] == "80.008"

    template = UsageEvent.objects.get(event_id="one-more")
    fields = {
        f.attname: getattr(template, f.attname)
        for f in UsageEvent._meta.concrete_fields
        if f.attname not in ("id", "event_id")
    }
    UsageEvent.objects.bulk_create(
        (UsageEvent(event_id=f"copy{i}", **fields) for i in range(14_999)), batch_size=5000
    )
    usage = usage_meter(api, "acme")
    assert (usage["quantity"], usage["included"], usage["billable"], usage["amount"]) == (
        "25000",
        "0",
        "25000",
        "200",
    )


def test_example_f_unique_users(api, clock):
    setup_meter(api, "active_users", "users", "unique_count", prop="user_id")
    setup_plan(api, "seats", [per_unit("active_users", "5.00")])
    setup_customer(api, plan="seats", overage="invoice")
    for i, user in enumerate("abcab"):
        r = event(api, f"u{i}", "acme", "active_users", user_id=user)
        assert r.status_code == 201, r.content
        assert (D(r.json()["charge"]["amount"]), r.json()["charge"]["funding"]) == (0, [])
    # an event without the property counts no user
    assert event(api, "anon", "acme", "active_users").status_code == 201
    usage = usage_meter(api, "acme")
    assert (usage["quantity"], usage["amount"], usage["rating"]) == ("3", "15", "periodic")
    assert not LedgerEntry.objects.filter(transaction__kind="draw").exists()


@pytest.mark.parametrize(
    ("aggregation", "quantity", "amount"),
    [("max", "9", "18"), ("latest", "6", "12")],
)
def test_max_and_latest_meters(api, clock, aggregation, quantity, amount):
    """Arrival order differs from time order: ``latest`` takes the last by timestamp."""
    setup_meter(api, "gpu", "gpus", aggregation)
    setup_plan(api, "gpu", [per_unit("gpu", "2.00")])
    setup_customer(api, plan="gpu", overage="invoice")
    for event_id, q, ts in (
        ("g1", "4", "2026-01-02T00:00:00Z"),
        ("g2", "6", "2026-01-09T00:00:00Z"),
        ("g3", "9", "2026-01-05T00:00:00Z"),
    ):
        r = event(api, event_id, "acme", "gpu", q, ts=ts)
        assert r.status_code == 201, r.content
        assert (D(r.json()["charge"]["amount"]), r.json()["charge"]["funding"]) == (0, [])
    usage = usage_meter(api, "acme")
    assert (usage["quantity"], usage["amount"]) == (quantity, amount)
    assert not LedgerTransaction.objects.filter(kind="draw").exists()


def test_the_events_writing_statement_is_planned_once_per_connection(api, clock, settings):
    """DB_PLAN_CACHE_MODE reaches PostgreSQL: without it, the Python path's writing statement
    (CTEs over unnest arrays; captures and the events the database function hands back use
    it) was planned afresh for every event."""
    settings.CHARGE_IN_DATABASE = False
    tokens_customer(api, "10.00")
    for i in range(8):
        assert event(api, f"e{i}", "acme", "llm_tokens", "1000").status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE 'WITH event AS (INSERT INTO billing_usageevent%%'"
        )
        plans = cursor.fetchall()
    # prepared after its first execution (DB_PREPARE_THRESHOLD=1), then never planned again
    assert plans == [(7, 0)]


# --- batches --------------------------------------------------------------------------------------


def test_a_batch_event_written_first_by_another_request_is_answered_as_its_replay(
    api, clock, monkeypatch
):
    """The batch reads replays before it takes its locks; an id another request writes in
    between makes the batch's insert find it, roll back, and charge the others again."""

    requests_customer(api, usd="5.00")
    events = [{"id": i, "customer": "acme", "meter": "requests"} for i in ("x0", "x1", "x2")]
    other = api.post("/api/v1/events", events[1], format="json")  # "the other request"
    assert other.status_code == 201
    monkeypatch.setattr(batch_module, "stored_events", lambda ids: {})  # read before it landed
    r = api.post("/api/v1/events/batch", {"events": events}, format="json")
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [(x["id"], x["status"], x["replayed"]) for x in results] == [
        ("x0", "accepted", False),
        ("x1", "accepted", True),
        ("x2", "accepted", False),
    ]
    # each answer shows the balance after its own charge (x1's is its first answer)
    assert [x["balances"][0]["available"] for x in results] == [
        "3.000000000000",
        "4.000000000000",
        "2.000000000000",
    ]
    assert available(api, "acme", "USD") == D("2")
    assert UsageEvent.objects.count() == 3
    assert LedgerTransaction.objects.filter(kind="draw").count() == 3


@pytest.mark.parametrize("wallets_per_transaction", [100, 1])
def test_batch_charges_one_customers_events_in_array_order(
    api, clock, monkeypatch, wallets_per_transaction
):
    """Whether both customers' events are charged in one transaction or one each."""
    monkeypatch.setattr(batch_module, "BATCH_WALLETS_PER_TRANSACTION", wallets_per_transaction)
    requests_customer(api, usd="2.00")
    requests_customer(api, customer="other", usd="1.00")
    events = [
        {"id": "b1", "customer": "acme", "meter": "requests"},
        {"id": "o1", "customer": "other", "meter": "requests"},
        {"id": "b2", "customer": "acme", "meter": "requests"},
        {"id": "o2", "customer": "other", "meter": "requests"},
        {"id": "b3", "customer": "acme", "meter": "requests"},
    ]
    r = api.post("/api/v1/events/batch", {"events": events}, format="json")
    assert r.status_code == 200, r.content
    assert [(x["id"], x["status"], x["code"]) for x in r.json()["results"]] == [
        ("b1", "accepted", None),
        ("o1", "accepted", None),
        ("b2", "accepted", None),
        ("o2", "declined", "insufficient_funds"),
        ("b3", "declined", "insufficient_funds"),
    ]
    assert [x["replayed"] for x in r.json()["results"]] == [False] * 5
    # each answer shows the balance after its own charge, as a single event's would
    assert [
        [(b["asset"], b["available"]) for b in x["balances"] if b["asset"] == "USD"]
        for x in r.json()["results"]
        if x["status"] == "accepted"
    ] == [
        [("USD", "1.000000000000")],
        [("USD", "0.000000000000")],
        [("USD", "0.000000000000")],
    ]
    stored = UsageEvent.objects.get(event_id="b2")
    assert (stored.status, stored.amount, stored.asset_id) == ("accepted", D("1"), "USD")
    assert stored.ledger_transaction.entries.count() == 2
    assert stored.response["balances"] == r.json()["results"][2]["balances"]
    assert UsageEvent.objects.get(event_id="b3").decline_code == "insufficient_funds"
    again = api.post("/api/v1/events/batch", {"events": events}, format="json").json()
    assert [(x["status"], x["replayed"]) for x in again["results"]] == [
        ("accepted", True),
        ("accepted", True),
        ("accepted", True),
        ("declined", True),
        ("declined", True),
    ]
    assert available(api, "acme", "USD") == D(0)
    assert available(api, "other", "USD") == D(0)
    assert UsageEvent.objects.count() == 5


# --- reversal -------------------------------------------------------------------------------------


def test_reversal_returns_units_to_the_allowance_and_money_to_the_paid_grant_once(api, clock):
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [per_unit("llm_tokens", "0.01", included="100")])
    setup_customer(api, plan="pro")
    grant(api, "acme", "USD", "10.00", id="paid")
    allowance = Grant.objects.get(purpose="allowance")

    r = event(api, "e1", "acme", "llm_tokens", "150")
    assert r.status_code == 201
    assert r.json()["charge"]["funding"] == [
        {"grant": "paid", "asset": "USD", "amount": "0.500000000000"}
    ]
    allowance.refresh_from_db()
    assert allowance.remaining == 0

    r = api.post("/api/v1/events/e1/reverse")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "reversed" and "reversed_at" in r.json()
    allowance.refresh_from_db()
    assert allowance.remaining == D(100)
    assert Grant.objects.get(pk="paid").remaining == D(10)
    assert available(api, "acme", "USD") == D(10)
    assert available(api, "acme", "tokens") == D(100)
    assert counter("acme", JAN1) == (D(0), D(0), D(0), D(0), D(0), 0)
    refunds = LedgerTransaction.objects.filter(kind="refund")
    assert refunds.count() == 1
    assert sorted(
        (e.asset_id, e.amount, e.grant_id)
        for e in refunds.get().entries.filter(account__wallet__isnull=False)
    ) == [("USD", D("0.5"), "paid"), ("tokens", D(100), allowance.pk)]

    again = api.post("/api/v1/events/e1/reverse")
    assert again.status_code == 200 and again.json()["status"] == "reversed"
    assert refunds.count() == 1
    assert Grant.objects.get(pk="paid").remaining == D(10)
    # the same usage again is charged exactly as the first time
    r = event(api, "e2", "acme", "llm_tokens", "150")
    assert r.json()["charge"]["included"] == "100"
    assert r.json()["charge"]["amount"] == "0.500000000000"


# --- holds: debt from an over-capture, expiry, a declined hold retried ----------------------------


def tokens_customer(api, usd: str) -> None:
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "metered", [per_unit("llm_tokens", "0.000002")])
    setup_customer(api, plan="metered")
    grant(api, "acme", "USD", usd, id="g1")


def hold(api, hold_id: str, quantity: str, expires_in: int = 600):
    return api.post(
        "/api/v1/holds",
        {
            "id": hold_id,
            "customer": "acme",
            "meter": "llm_tokens",
            "quantity": quantity,
            "expires_in": expires_in,
        },
        format="json",
    )


def usd_account() -> Account:
    return Account.objects.get(wallet__customer__external_id="acme", asset_id="USD")


def test_over_capture_makes_debt_that_declines_until_a_top_up_pays_it(api, clock):
    tokens_customer(api, "10.00")
    assert hold(api, "h1", "2000000").status_code == 201  # 4.00 held
    r = api.post("/api/v1/holds/h1/capture", {"quantity": "6000000"}, format="json")
    assert r.status_code == 200, r.content
    charge = r.json()["event"]["charge"]
    assert charge["amount"] == "12.000000000000"
    assert charge["funding"] == [
        {"grant": "g1", "asset": "USD", "amount": "10.000000000000"},
        {"grant": None, "asset": "USD", "amount": "2.000000000000"},
    ]
    account = usd_account()
    assert (account.posted, account.held, account.debt) == (D(-2), D(0), D(2))
    assert available(api, "acme", "USD") == D(-2)

    entries = LedgerEntry.objects.count()
    r = event(api, "after", "acme", "llm_tokens", "1")
    body = problem(r, 402, "negative_balance")
    assert body["event"]["status"] == "declined"
    assert UsageEvent.objects.get(event_id="after").decline_code == "negative_balance"
    assert LedgerEntry.objects.count() == entries
    problem(hold(api, "h2", "1"), 402, "negative_balance")

    top_up = grant(api, "acme", "USD", "5.00", id="top")
    assert top_up["remaining"] == "3.000000000000"
    account.refresh_from_db()
    assert (account.posted, account.debt) == (D(3), D(0))
    r = event(api, "flows", "acme", "llm_tokens", "1000000")
    assert r.status_code == 201, r.content
    assert r.json()["charge"]["funding"] == [
        {"grant": "top", "asset": "USD", "amount": "2.000000000000"}
    ]
    assert available(api, "acme", "USD") == D(1)


def test_expired_hold_reads_expired_cannot_be_captured_and_is_swept(api, clock):
    tokens_customer(api, "10.00")
    r = hold(api, "h1", "2000000", expires_in=60)
    assert r.status_code == 201
    expires_at = datetime.fromisoformat(r.json()["expires_at"])
    assert expires_at == datetime(2026, 1, 10, 12, 1, tzinfo=UTC)
    assert available(api, "acme", "USD") == D(6)
    assert api.get("/api/v1/holds/h1").json()["status"] == "pending"

    clock.move_to(expires_at)  # due at its expiry, before any sweep
    r = api.get("/api/v1/holds/h1")
    assert r.status_code == 200 and r.json()["status"] == "expired"
    assert Hold.objects.get(pk="h1").status == "pending"
    body = problem(
        api.post("/api/v1/holds/h1/capture", {"quantity": "1"}, format="json"),
        409,
        "hold_not_pending",
    )
    assert body["hold_status"] == "expired"
    problem(api.post("/api/v1/holds/h1/void"), 409, "hold_not_pending")
    assert not UsageEvent.objects.exists()
    assert usd_account().held == D(4)

    assert holds_expire_due() == ["h1"]
    assert holds_expire_due() == []
    assert Hold.objects.get(pk="h1").status == "expired"
    account = usd_account()
    assert (account.posted, account.held) == (D(10), D(0))
    assert Grant.objects.get(pk="g1").held == D(0)
    assert api.get("/api/v1/holds/h1").json()["status"] == "expired"


def test_an_expired_hold_never_blocks_a_charge_before_the_sweep(api, clock):
    tokens_customer(api, "10.00")
    assert hold(api, "h1", "4000000", expires_in=60).status_code == 201  # 8.00 held
    problem(event(api, "e1", "acme", "llm_tokens", "2000000"), 402, "insufficient_funds")
    clock.shift(timedelta(seconds=61))
    r = event(api, "e2", "acme", "llm_tokens", "5000000", ts="2026-01-10T12:01:01Z")
    assert r.status_code == 201, r.content
    assert Hold.objects.get(pk="h1").status == "expired"
    assert available(api, "acme", "USD") == D(0)


def test_a_declined_hold_can_be_tried_again_after_a_top_up(api, clock):
    tokens_customer(api, "1.00")
    problem(hold(api, "h1", "1000000"), 402, "insufficient_funds")  # 2.00 > 1.00
    problem(hold(api, "h1", "1000000"), 402, "insufficient_funds")
    assert not Hold.objects.exists()
    grant(api, "acme", "USD", "1.00", id="more")
    r = hold(api, "h1", "1000000")
    assert r.status_code == 201, r.content
    assert r.json()["held"] == [{"asset": "USD", "amount": "2.000000000000"}]
    again = hold(api, "h1", "1000000")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == r.json()
    assert Hold.objects.count() == 1 and usd_account().held == D(2)


def test_a_hold_id_taken_by_a_wallet_hold_is_refused_and_writes_nothing(api, clock):
    tokens_customer(api, "10.00")
    hold_create(wallet_id=usd_account().wallet_id, hold_id="h1", legs=[HoldLeg("USD", D(1))])
    records = IdempotencyRecord.objects.count()
    body = problem(hold(api, "h1", "1000000"), 409, "idempotency_conflict")
    assert list(body["errors"]) == ["id"]
    # the claim, the reservation and the held amounts all rolled back
    assert IdempotencyRecord.objects.count() == records
    assert HoldAllocation.objects.filter(hold_id="h1").count() == 1
    assert usd_account().held == D(1) and Grant.objects.get(pk="g1").held == D(1)
    # a wallet's own hold is not a usage hold: the usage API neither shows nor moves it
    problem(api.get("/api/v1/holds/h1"), 404, "not_found")
    problem(
        api.post("/api/v1/holds/h1/capture", {"quantity": "1"}, format="json"), 404, "not_found"
    )
    assert Hold.objects.get(pk="h1").status == "pending"


@pytest.mark.parametrize(("quantity", "answer"), [("1000000", "replay"), ("5", "not_pending")])
def test_a_capture_that_lost_a_race_to_the_same_capture_answers_as_for_a_captured_hold(
    api, clock, monkeypatch, quantity, answer
):
    """The loser read the hold while it was pending; the winner's event (same event id)
    committed before the loser's lookup. Not an event id conflict: the hold is captured."""
    tokens_customer(api, "10.00")
    assert hold(api, "h1", "2000000").status_code == 201
    stale = holds_service.hold_get(hold_id="h1")
    won = api.post("/api/v1/holds/h1/capture", {"quantity": "1000000"}, format="json")
    assert won.status_code == 200, won.content
    reads = iter([stale])
    real = holds_service.hold_get
    monkeypatch.setattr(
        holds_service,
        "hold_get",
        lambda *, hold_id, **key: next(reads, None) or real(hold_id=hold_id, **key),
    )
    if answer == "replay":
        outcome = holds_service.hold_capture_usage(hold_id="h1", quantity=D(quantity))
        assert outcome.replayed and outcome.body == won.json()
    else:
        with pytest.raises(HoldNotPending):
            holds_service.hold_capture_usage(hold_id="h1", quantity=D(quantity))
    assert UsageEvent.objects.filter(hold_id="h1").count() == 1


def test_a_capture_records_its_transaction_and_event_on_the_hold(api, clock):
    tokens_customer(api, "10.00")
    assert hold(api, "h1", "2000000").status_code == 201  # 4.00 held
    r = api.post(
        "/api/v1/holds/h1/capture", {"quantity": "1000000", "event_id": "call-1"}, format="json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["held"] == [{"asset": "USD", "amount": "4.000000000000"}]
    stored = Hold.objects.get(pk="h1")
    row = UsageEvent.objects.get(event_id="call-1")
    assert (stored.status, row.hold_id) == ("captured", "h1")
    assert stored.capture_transaction_id == row.ledger_transaction_id is not None
    assert stored.metadata["event"] == "call-1" and stored.metadata["customer"] == "acme"
    assert r.json()["event"] == row.response
    # read back: the same hold, its event named by id
    assert api.get("/api/v1/holds/h1").json() == {**r.json(), "event": "call-1"}
    account = usd_account()
    assert (account.posted, account.held) == (D(8), D(0))
    assert Grant.objects.get(pk="g1").held == D(0)


# --- spend limits: soft, day windows --------------------------------------------------------------


def put_limit(api, **body) -> None:
    r = api.put("/api/v1/customers/acme/spend-limit", body, format="json")
    assert r.status_code == 200, r.content


def alerts() -> list[tuple]:
    return list(Alert.objects.order_by("id").values_list("kind", "threshold", "event_id", "spent"))


THRESHOLD = Alert.Kind.THRESHOLD
EXCEEDED = Alert.Kind.EXCEEDED


def test_soft_limit_never_declines_and_alerts_once_each(api, clock):
    requests_customer(api, usd="100.00")
    put_limit(api, amount="5.00", window="period", mode="soft", alert_thresholds=[50, 100])
    for i in range(1, 9):
        r = event(api, f"s{i}", "acme", "requests")
        assert r.status_code == 201, (i, r.content)
    assert alerts() == [
        (THRESHOLD, 50, "s3", D(3)),
        (THRESHOLD, 100, "s5", D(5)),
        (EXCEEDED, None, "s6", D(6)),
    ]
    body = api.get("/api/v1/customers/acme/usage").json()["spend"]
    assert (body["amount"], body["limit"], body["mode"]) == ("8", "5", "soft")
    assert available(api, "acme", "USD") == D(92)


def test_pending_holds_count_against_a_hard_limit_until_they_end(api, clock):
    tokens_customer(api, "100.00")
    put_limit(api, amount="10.00", window="period", mode="hard", alert_thresholds=[50])
    assert hold(api, "h1", "3000000").status_code == 201  # 6.00 estimated
    body = problem(hold(api, "h2", "3000000"), 402, "spend_limit_exceeded")  # 6 + 6 > 10
    assert (D(body["spent"]), D(body["held"]), D(body["limit"])) == (0, 6, 10)
    assert hold(api, "h3", "2000000").status_code == 201  # 6 + 4 = 10: at the limit
    assert api.post("/api/v1/holds/h1/void").status_code == 200
    assert hold(api, "h2", "3000000").status_code == 201  # 4 + 6 once h1 is void
    r = api.post("/api/v1/holds/h3/capture", {"quantity": "2000000"}, format="json")
    assert r.status_code == 200, r.content
    body = problem(hold(api, "h4", "500000"), 402, "spend_limit_exceeded")  # 4 + 6 + 1
    assert (D(body["spent"]), D(body["held"])) == (4, 6)
    # an event counts the live holds too: its charge cannot push their captures over
    body = problem(event(api, "e1", "acme", "llm_tokens", "500000"), 402, "spend_limit_exceeded")
    assert (D(body["spent"]), D(body["held"])) == (4, 6)
    assert event(api, "e2", "acme", "llm_tokens", "0").status_code == 201  # charges nothing
    clock.shift(timedelta(seconds=601))  # h2 expires: no longer expected to spend
    assert hold(api, "h4", "500000").status_code == 201
    r = event(api, "e3", "acme", "llm_tokens", "1500000", ts="2026-01-10T12:10:01Z")
    assert r.status_code == 201, r.content  # 4 spent + 1 held (h4) + 3 = 8
    assert UsageEvent.objects.get(event_id="e1").decline_code == "spend_limit_exceeded"


def test_day_window_resets_the_next_utc_day(api, clock):
    requests_customer(api, usd="100.00")
    put_limit(api, amount="3.00", window="day", mode="hard", alert_thresholds=[50])
    day1, day2 = "2026-01-10T12:00:00Z", "2026-01-11T00:00:00Z"
    for i in range(1, 4):
        assert event(api, f"d{i}", "acme", "requests", ts=day1).status_code == 201
    problem(event(api, "d4", "acme", "requests", ts=day1), 402, "spend_limit_exceeded")

    clock.move_to(day2)
    for i in range(1, 3):
        r = event(api, f"n{i}", "acme", "requests", ts=day2)
        assert r.status_code == 201, r.content
    assert alerts() == [
        (THRESHOLD, 50, "d2", D(2)),
        (EXCEEDED, None, "d4", D(3)),
        (THRESHOLD, 50, "n2", D(2)),  # fires again: a new window
    ]
    assert Alert.objects.get(event_id="n2").window_start == datetime(2026, 1, 11, tzinfo=UTC)
    spend = api.get("/api/v1/customers/acme/usage").json()["spend"]
    assert (spend["amount"], spend["window"]["start"]) == ("2", "2026-01-11T00:00:00+00:00")
    yesterday = api.get("/api/v1/customers/acme/usage?at=2026-01-10T18:00:00Z").json()["spend"]
    assert yesterday["amount"] == "3"


def test_late_event_counts_in_its_own_day_and_its_reversal_gives_it_back(api, clock):
    """A charge counts in the spend window of its event's timestamp (as ``spend_in_window``
    recomputes it), so its reversal takes it out of that same window."""
    requests_customer(api, usd="100.00")
    put_limit(api, amount="10.00", window="day", mode="hard")
    clock.move_to("2026-01-11T00:01:00Z")
    r = event(api, "late", "acme", "requests", ts="2026-01-10T23:59:00Z")
    assert r.status_code == 201, r.content

    def spent(at: str) -> str:
        return api.get(f"/api/v1/customers/acme/usage?at={quote(at)}").json()["spend"]["amount"]

    assert (spent("2026-01-10T12:00:00Z"), spent("2026-01-11T12:00:00Z")) == ("1", "0")
    assert api.post("/api/v1/events/late/reverse").status_code == 200
    assert (spent("2026-01-10T12:00:00Z"), spent("2026-01-11T12:00:00Z")) == ("0", "0")


# --- replays --------------------------------------------------------------------------------------


def test_a_retry_of_an_event_without_timestamp_is_a_replay(api, clock):
    requests_customer(api, usd="5.00")
    body = {"id": "no-ts", "customer": "acme", "meter": "requests"}
    first = api.post("/api/v1/events", body, format="json")
    assert first.status_code == 201
    clock.shift(timedelta(seconds=30))
    again = api.post("/api/v1/events", body, format="json")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    problem(
        api.post("/api/v1/events", {**body, "quantity": "2"}, format="json"),
        409,
        "idempotency_conflict",
    )
    assert available(api, "acme", "USD") == D(4)


# --- listing events -------------------------------------------------------------------------------


def listed(api, query: str = "") -> list[str]:
    r = api.get(f"/api/v1/events{query}")
    assert r.status_code == 200, r.content
    assert r.json()["next"] is None
    return [e["id"] for e in r.json()["results"]]


def test_event_list_filters_and_pagination(api, clock):
    requests_customer(api, usd="3.00")
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "both", [per_unit("requests", "1.00"), per_unit("llm_tokens", "0.000001")])
    setup_customer(api, external_id="beta", plan="both", overage="invoice")
    sent = [
        ("a1", "acme", "requests", "2026-01-02T00:00:00Z"),
        ("a2", "acme", "requests", "2026-01-03T00:00:00Z"),
        ("b1", "beta", "llm_tokens", "2026-01-03T00:00:00Z"),
        ("a3", "acme", "requests", "2026-01-04T00:00:00Z"),
        ("a4", "acme", "requests", "2026-01-05T00:00:00Z"),  # declined: the wallet is empty
        ("b2", "beta", "requests", "2026-01-06T00:00:00Z"),
        ("b3", "beta", "llm_tokens", "2026-01-07T00:00:00Z"),
    ]
    for event_id, customer, meter, ts in sent:
        event(api, event_id, customer, meter, "5", ts=ts)
    assert api.post("/api/v1/events/a2/reverse").status_code == 200

    # newest first by timestamp
    assert listed(api) == ["b3", "b2", "a4", "a3", "b1", "a2", "a1"]
    assert listed(api, "?customer=acme") == ["a4", "a3", "a2", "a1"]
    assert listed(api, "?meter=llm_tokens") == ["b3", "b1"]
    assert listed(api, "?customer=beta&meter=requests") == ["b2"]
    assert listed(api, "?status=declined") == ["a4"]
    assert listed(api, "?status=reversed") == ["a2"]
    assert listed(api, "?status=accepted&customer=acme") == ["a3", "a1"]
    since = quote("2026-01-03T00:00:00Z")
    until = quote("2026-01-06T00:00:00Z")
    assert listed(api, f"?since={since}&until={until}") == ["a4", "a3", "b1", "a2"]
    assert listed(api, f"?until={since}") == ["a1"]

    seen: list[str] = []
    url = "/api/v1/events?limit=3"
    pages = 0
    while url:
        page = api.get(url).json()
        assert len(page["results"]) <= 3
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
        pages += 1
    assert pages == 3
    assert seen == ["b3", "b2", "a4", "a3", "b1", "a2", "a1"]

    detail = api.get("/api/v1/events/a4").json()
    assert (detail["status"], detail["decline_code"], detail["customer"]) == (
        "declined",
        "insufficient_funds",
        "acme",
    )
    assert Counter(e.status for e in UsageEvent.objects.all()) == {
        "accepted": 5,
        "declined": 1,
        "reversed": 1,
    }


# --- scopes ---------------------------------------------------------------------------------------


def test_an_events_key_sends_usage_but_reads_nothing(api, make_api_client, clock):
    tokens_customer(api, "10.00")
    events_only = make_api_client(["events"])
    read_only = make_api_client(["read"])

    assert event(events_only, "e1", "acme", "llm_tokens", "1000").status_code == 201
    batch = {"events": [{"id": "e2", "customer": "acme", "meter": "llm_tokens"}]}
    assert events_only.post("/api/v1/events/batch", batch, format="json").status_code == 200
    assert hold(events_only, "h1", "1000").status_code == 201
    capture = events_only.post("/api/v1/holds/h1/capture", {"quantity": "10"}, format="json")
    assert capture.status_code == 200
    assert hold(events_only, "h2", "1000").status_code == 201
    assert events_only.post("/api/v1/holds/h2/void").status_code == 200
    assert events_only.post("/api/v1/events/e1/reverse").status_code == 200

    for path in (
        "/api/v1/events",
        "/api/v1/events/e1",
        "/api/v1/holds/h1",
        "/api/v1/customers/acme/usage",
        "/api/v1/customers/acme/wallet",
    ):
        problem(events_only.get(path), 403, "forbidden")
        assert read_only.get(path).status_code == 200, path
    problem(event(read_only, "e3", "acme", "llm_tokens", "1"), 403, "forbidden")
    problem(hold(read_only, "h3", "1"), 403, "forbidden")
    problem(
        events_only.put("/api/v1/customers/acme/spend-limit", {"amount": "1.00"}, format="json"),
        403,
        "forbidden",
    )
    from rest_framework.test import APIClient

    problem(APIClient().post("/api/v1/events", {}, format="json"), 401, "unauthenticated")
    assert not UsageEvent.objects.filter(event_id="e3").exists()
    assert not Hold.objects.filter(pk="h3").exists()


def test_reversing_an_over_capture_after_its_debt_was_paid(api, clock):
    """12.00 captured: 10.00 from g1, 2.00 of debt that the top-up of 5.00 paid. The reversal
    refunds all 12.00: the wallet ends with 15.00 and no debt."""
    tokens_customer(api, "10.00")
    assert hold(api, "h1", "2000000").status_code == 201
    r = api.post("/api/v1/holds/h1/capture", {"quantity": "6000000"}, format="json")
    assert r.status_code == 200  # 12.00: 10.00 from g1, 2.00 of debt
    grant(api, "acme", "USD", "5.00", id="top")  # pays the 2.00 of debt: 3.00 remain
    r = api.post("/api/v1/events/h1/reverse")
    assert r.status_code == 200, r.content
    assert available(api, "acme", "USD") == D(15)
    assert usd_account().debt == 0


def test_late_event_uses_its_own_periods_allowance_until_it_is_swept(api, clock):
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [per_unit("llm_tokens", "0.01", included="100")])
    setup_customer(api, plan="pro")
    grant(api, "acme", "USD", "10.00", id="g1")
    clock.move_to("2026-02-10T12:00:00Z")  # January's allowance has expired, not swept yet
    r = event(api, "late", "acme", "llm_tokens", "150", ts="2026-01-20T08:00:00Z")
    assert r.status_code == 201, r.content
    charge = r.json()["charge"]
    assert (charge["included"], charge["billable"], charge["amount"]) == (
        "100",
        "50",
        "0.500000000000",
    )
    assert Grant.objects.get(purpose="allowance", expires_at=FEB1).remaining == 0


# --- ids with a slash ---------------------------------------------------------------------------


def test_event_hold_and_grant_ids_with_a_slash_are_reachable(api, clock):
    """Ids are the integrator's own (e.g. "req/42"): every route that names one finds it."""
    requests_customer(api)
    grant(api, "acme", "USD", "10.00", id="topup/2026/01")
    r = event(api, "req/42", "acme", "requests", ts="2026-01-10T11:00:00Z")
    assert r.status_code == 201, r.content

    got = api.get("/api/v1/events/req/42")
    assert got.status_code == 200 and got.json()["id"] == "req/42"
    reversed_ = api.post("/api/v1/events/req/42/reverse")
    assert reversed_.status_code == 200, reversed_.content
    assert reversed_.json()["status"] == "reversed"

    body = {"id": "call/7", "customer": "acme", "meter": "requests", "quantity": "1"}
    assert api.post("/api/v1/holds", body, format="json").status_code == 201
    assert api.get("/api/v1/holds/call/7").json()["status"] == "pending"
    captured = api.post("/api/v1/holds/call/7/capture", {"quantity": "1"}, format="json")
    assert captured.status_code == 200, captured.content
    assert captured.json()["status"] == "captured"

    voided = api.post("/api/v1/grants/topup/2026/01/void", {"reason": "test"}, format="json")
    assert voided.status_code == 200, voided.content
    assert Grant.objects.get(pk="topup/2026/01").status == "voided"
    assert api.get("/api/v1/events/req/43").status_code == 404


def test_a_batch_alternating_between_two_periods_puts_each_event_in_its_own(api, clock):
    """A batch remembers the last period it found per series (``_period``'s ``known``): an
    event outside it must still get its own period, however the events alternate."""
    setup_meter(api, "requests", "requests", "count")
    setup_plan(api, "flat", [per_unit("requests", "1.00")])
    setup_customer(
        api,
        plan="flat",
        overage="invoice",
        start="2025-12-01T00:00:00Z",
        subscription={"backdate": True, "invoice_missed_periods": True},
    )
    times = ["12-20T12:00", "01-05T12:00", "12-21T12:00", "01-06T12:00", "12-31T23:59:59"]
    events = [
        {"id": f"p{i}", "customer": "acme", "meter": "requests", "timestamp": f"{year}-{t}Z"}
        for i, t in enumerate(times)
        for year in ["2025" if t.startswith("12") else "2026"]
    ]
    r = api.post("/api/v1/events/batch", {"events": events}, format="json")
    assert r.status_code == 200, r.content
    assert {x["status"] for x in r.json()["results"]} == {"accepted"}
    december = datetime(2025, 12, 1, tzinfo=UTC)
    january = datetime(2026, 1, 1, tzinfo=UTC)
    assert [UsageEvent.objects.get(event_id=f"p{i}").period_start for i in range(5)] == [
        december,
        january,
        december,
        january,
        december,
    ]
    assert counter("acme", december)[-1] == 3
    assert counter("acme", january)[-1] == 2


def test_a_batchs_events_without_a_time_take_the_batchs_time_of_receipt(api, clock):
    """One time for the whole batch (read once), however long it takes to parse: the
    events that give none stand at the moment it arrived, as the batch's charge does."""
    requests_customer(api, usd="5.00")
    arrived = datetime.fromisoformat(METERING_NOW) + timedelta(minutes=1)
    given = arrived - timedelta(hours=1)
    with time_machine.travel(arrived, tick=True):
        events = [{"id": f"t{i}", "customer": "acme", "meter": "requests"} for i in range(3)]
        events.append({**events[0], "id": "given", "timestamp": given.isoformat()})
        r = api.post("/api/v1/events/batch", {"events": events}, format="json")
    assert r.status_code == 200, r.content
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 4
    times = dict(UsageEvent.objects.values_list("event_id", "timestamp"))
    received = dict(UsageEvent.objects.values_list("event_id", "received_at"))
    assert times["t0"] == times["t1"] == times["t2"] == received["t0"] == received["given"]
    assert times["t0"] >= arrived
    assert times["given"] == given


def test_a_batch_draws_grants_in_burn_down_order_as_single_events_do(api, clock):
    """The batch sorts a wallet's grants once and keeps drawing them down in memory: a
    grant it empties stays in its list and pays nothing more. The same events, one by one
    for a twin customer, draw the same grants the same amounts."""
    for customer in ("acme", "twin"):
        requests_customer(api, customer=customer)
        grant(api, customer, "USD", "1.50", id=f"{customer}-promo", priority=1)
        grant(api, customer, "USD", "2.50", id=f"{customer}-paid", priority=5)
    # 1.00 from promo; 0.50 promo + 0.50 paid; 1.00 paid; 1.00 paid; the last declined
    events = [{"id": f"e{i}", "customer": "acme", "meter": "requests"} for i in range(5)]
    r = api.post("/api/v1/events/batch", {"events": events}, format="json")
    assert r.status_code == 200, r.content
    batch = r.json()["results"]
    singles = [
        api.post("/api/v1/events", {**e, "id": f"t{e['id']}", "customer": "twin"}, format="json")
        for e in events
    ]

    def drawn(charge):
        return [(f["grant"].split("-", 1)[1], f["amount"]) for f in charge["funding"]]

    statuses = ["accepted", "accepted", "accepted", "accepted", "declined"]
    assert [x["status"] for x in batch] == statuses
    assert [s.status_code for s in singles] == [402 if x == "declined" else 201 for x in statuses]
    accepted = [i for i, x in enumerate(statuses) if x == "accepted"]
    expected = [
        [("promo", "1.000000000000")],
        [("promo", "0.500000000000"), ("paid", "0.500000000000")],
        [("paid", "1.000000000000")],
        [("paid", "1.000000000000")],
    ]
    assert [drawn(batch[i]["charge"]) for i in accepted] == expected
    assert [drawn(singles[i].json()["charge"]) for i in accepted] == expected
    remaining = dict(Grant.objects.values_list("id", "remaining"))
    assert remaining["acme-promo"] == remaining["twin-promo"] == 0
    assert remaining["acme-paid"] == remaining["twin-paid"] == 0
