"""Periods closing into invoices: docs/charging.md's examples carried through the billing run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connections, transaction

from billing.invoicing import invoice_draft_create
from billing.models import Invoice, Subscription, UsageCounter
from billing.periodic import billing_run, rating_run, subscription_period_close
from billing.periodic import close as close_module
from tests.billing.scenario import (
    event,
    grant,
    setup_customer,
    setup_example_c_plan,
    setup_meter,
    setup_plan,
)
from wallets.models import Grant

D = Decimal
pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def lines(invoice: Invoice) -> list[tuple[str, str]]:
    return [(line.kind, str(line.amount)) for line in invoice.lines.order_by("position")]


def test_example_b_seats_prorated_on_the_next_invoice(api):
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False) as clock:
        setup_plan(api, "team", [], seat_price="20.00")
        sub = setup_customer(api, plan="team")
        r = api.patch(f"/api/v1/subscriptions/{sub['id']}", {"seats": 5}, format="json")
        assert r.status_code == 200, r.content
        clock.move_to("2026-01-01T00:00:00Z")
    first = Invoice.objects.get()
    # the first invoice was made at creation with 1 seat; seats 1 → 5 at the same instant
    # is a proration of 4 × 20 × 31/31
    assert lines(first) == [("seats", "20.0000")]
    with time_machine.travel("2026-01-16T00:00:00Z", tick=False):
        r = api.patch(f"/api/v1/subscriptions/{sub['id']}", {"seats": 7}, format="json")
        assert r.status_code == 200
    report = billing_run(as_of=at("2026-02-01T00:00:00Z"))
    assert report.steps["periods closed"] == 1 and report.drifts == []
    feb = Invoice.objects.get(period_start=at("2026-02-01T00:00:00Z"))
    assert lines(feb) == [("proration", "80.0000"), ("proration", "20.6500"), ("seats", "140.0000")]
    assert feb.total == D("240.65")
    again = billing_run(as_of=at("2026-02-01T00:00:00Z"))
    assert again.steps["periods closed"] == 0
    assert Invoice.objects.count() == 2


def test_example_c_outcomes_on_the_february_invoice(api):
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api)
        setup_customer(api, plan="support", overage="invoice")
        for i in range(130):
            assert event(api, f"t{i}", "acme", "ticket_resolved").status_code == 201
        assert api.post("/api/v1/events/t3/reverse").status_code == 200
    assert Invoice.objects.count() == 0  # nothing in advance, no first invoice
    billing_run(as_of=at("2026-02-01T00:00:00Z"))
    invoice = Invoice.objects.get()
    assert (invoice.period_start, invoice.period_end) == (
        at("2026-02-01T00:00:00Z"),
        at("2026-03-01T00:00:00Z"),
    )
    assert lines(invoice) == [("outcome", "127.7100")]
    line = invoice.lines.get()
    assert (line.quantity, line.unit_price) == (D("129"), D("0.99"))
    assert invoice.total == D("127.71")


def test_example_a_base_fee_in_advance_and_allowance_refresh(api):
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_meter(api, "llm_tokens", "tokens")
        setup_plan(
            api,
            "pro",
            [
                {
                    "meter": "llm_tokens",
                    "included": "1000000",
                    "model": "graduated",
                    "tiers": [
                        {"up_to": "10000000", "unit_price": "0.000002"},
                        {"up_to": None, "unit_price": "0.0000015"},
                    ],
                }
            ],
            base_fee="49.00",
        )
        setup_customer(api)
        grant(api, "acme", "USD", "20.00")
    with time_machine.travel("2026-01-20T00:00:00Z", tick=False):
        assert (
            event(api, "e1", "acme", "llm_tokens", "800000", ts="2026-01-20T00:00:00Z").status_code
            == 201
        )
    first = Invoice.objects.get()
    assert lines(first) == [("base_fee", "49.0000")]
    with time_machine.travel("2026-02-01T00:00:05Z", tick=False):
        report = billing_run(as_of=at("2026-02-01T00:00:05Z"))
    assert report.drifts == []
    feb = Invoice.objects.get(period_start=at("2026-02-01T00:00:00Z"))
    assert lines(feb) == [("base_fee", "49.0000")]  # usage was paid from the wallet
    allowances = Grant.objects.filter(purpose="allowance").order_by("created_at")
    assert [(g.status, g.remaining) for g in allowances] == [
        ("expired", D("0")),
        ("active", D("1000000")),
    ]
    sub = Subscription.objects.get()
    assert (sub.current_period_start, sub.current_period_end) == (
        at("2026-02-01T00:00:00Z"),
        at("2026-03-01T00:00:00Z"),
    )


def test_examples_e_and_f_rated_periodically(api):
    with time_machine.travel("2026-01-05T00:00:00Z", tick=False):
        setup_meter(api, "api_calls", "calls", "count")
        setup_meter(api, "active_users", "users", "unique_count", prop="user_id")
        setup_plan(
            api,
            "platform",
            [
                {
                    "meter": "api_calls",
                    "model": "volume",
                    "tiers": [
                        {"up_to": "10000", "unit_price": "0.01"},
                        {"up_to": "100000", "unit_price": "0.008"},
                        {"up_to": None, "unit_price": "0.005"},
                    ],
                },
                {"meter": "active_users", "model": "per_unit", "unit_price": "5.00"},
            ],
        )
        setup_customer(api, plan="platform", overage="invoice")
        for batch in range(25):
            body = {
                "events": [
                    {
                        "id": f"c{batch}-{i}",
                        "customer": "acme",
                        "meter": "api_calls",
                        "timestamp": "2026-01-05T00:00:00Z",
                    }
                    for i in range(1000)
                ]
            }
            r = api.post("/api/v1/events/batch", body, format="json")
            assert r.status_code == 200
            assert {x["status"] for x in r.json()["results"]} == {"accepted"}
        for i, user in enumerate("abcab"):
            r = event(api, f"u{i}", "acme", "active_users", ts="2026-01-05T00:00:00Z", user_id=user)
            assert r.status_code == 201, r.content
        rating = rating_run()
        assert rating.counters == 2
        assert rating_run().counters == 2  # idempotent
        counters = {
            c.price.meter.code: c for c in UsageCounter.objects.select_related("price__meter")
        }
        assert (counters["api_calls"].quantity, counters["api_calls"].accrued) == (
            D("25000"),
            D("200"),
        )
        assert (counters["active_users"].quantity, counters["active_users"].accrued) == (
            D("3"),
            D("15"),
        )
    billing_run(as_of=at("2026-02-01T00:00:00Z"))
    invoice = Invoice.objects.get()
    assert lines(invoice) == [("outcome", "200.0000"), ("usage", "15.0000")]


def test_month_end_anchor(api):
    with time_machine.travel("2026-01-31T12:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        setup_customer(api, start="2026-01-31T12:00:00Z")
    billing_run(as_of=at("2026-03-31T12:00:00Z"))
    starts = list(
        Invoice.objects.order_by("period_start").values_list("period_start", "period_end")
    )
    assert starts == [
        (at("2026-01-31T12:00:00Z"), at("2026-02-28T12:00:00Z")),
        (at("2026-02-28T12:00:00Z"), at("2026-03-31T12:00:00Z")),
        (at("2026-03-31T12:00:00Z"), at("2026-04-30T12:00:00Z")),
    ]


def test_a_crash_mid_close_leaves_nothing_and_a_rerun_closes_once(api, monkeypatch):
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        setup_customer(api)
    sub = Subscription.objects.get()
    real = close_module.subscription_allowances_issue

    def crash(**kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(close_module, "subscription_allowances_issue", crash)
    with pytest.raises(RuntimeError):
        subscription_period_close(subscription_id=sub.pk, now=at("2026-02-01T00:00:00Z"))
    assert Invoice.objects.count() == 1
    sub.refresh_from_db()
    assert sub.current_period_start == at("2026-01-01T00:00:00Z")
    monkeypatch.setattr(close_module, "subscription_allowances_issue", real)
    assert subscription_period_close(subscription_id=sub.pk, now=at("2026-02-01T00:00:00Z"))
    assert subscription_period_close(subscription_id=sub.pk, now=at("2026-02-01T00:00:00Z")) is None
    assert Invoice.objects.count() == 2


def test_a_periods_invoice_made_again_is_the_first_one_and_writes_nothing(api):
    """invoice_draft_create finds an existing subscription invoice of the period by the
    unique constraint (no read first): the first is returned, nothing more is written, and
    the caller's transaction goes on."""
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        setup_customer(api)
    sub = Subscription.objects.select_related("customer").get()
    first = subscription_period_close(subscription_id=sub.pk, now=at("2026-02-01T00:00:00Z"))
    lines = list(first.lines.values_list("description", "amount"))
    with transaction.atomic():
        again, created = invoice_draft_create(
            customer=sub.customer,
            currency="USD",
            kind=Invoice.Kind.SUBSCRIPTION,
            lines=[],
            subscription=sub,
            period_start=first.period_start,
            period_end=first.period_end,
        )
        assert Subscription.objects.filter(pk=sub.pk).exists()  # the transaction is usable
    assert (again.pk, created) == (first.pk, False)
    assert list(again.lines.values_list("description", "amount")) == lines
    assert Invoice.objects.filter(subscription=sub, period_start=first.period_start).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_closing_the_same_periods(make_api_client):
    api = make_api_client()
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        for n in range(5):
            setup_customer(api, external_id=f"cust{n}")
    results = []
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        try:
            results.append(billing_run(as_of=at("2026-04-01T00:00:00Z")).steps["periods closed"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 15  # 5 subscriptions × 3 periods, each closed once
    assert Invoice.objects.count() == 5 * 4


@pytest.mark.django_db(transaction=True)
def test_run_billing_with_worker_processes_closes_each_period_once(make_api_client):
    """``run_billing --workers 3``: shards of the subscriptions closed by three forked
    processes, each on its own connection; together every period exactly once."""
    from io import StringIO

    from django.core.management import call_command

    api = make_api_client()
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_meter(api, "gpu", "gpu_seconds", "max")
        setup_plan(
            api,
            "pro",
            [{"meter": "gpu", "model": "volume", "tiers": [{"up_to": None, "unit_price": "0.10"}]}],
            base_fee="10.00",
        )
        for n in range(7):
            setup_customer(api, external_id=f"cust{n}")
    out = StringIO()
    call_command("run_billing", "--as-of", "2026-03-01T00:00:00Z", "--workers", "3", stdout=out)
    assert "periods closed: 14" in out.getvalue()  # 7 subscriptions × 2 periods
    assert "prices rated: 7" in out.getvalue()
    assert "ledger: no drift" in out.getvalue()
    assert Invoice.objects.count() == 7 * 3
    assert set(Subscription.objects.values_list("current_period_start", flat=True)) == {
        at("2026-03-01T00:00:00Z")
    }
    again = StringIO()
    call_command("run_billing", "--as-of", "2026-03-01T00:00:00Z", "--workers", "2", stdout=again)
    assert "periods closed: 0" in again.getvalue()


def test_shards_split_the_subscriptions_without_overlap(api):
    from billing.periodic import in_shard

    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        for n in range(9):
            setup_customer(api, external_id=f"cust{n}")
    every = set(Subscription.objects.values_list("pk", flat=True))
    shards = [
        set(in_shard(Subscription.objects.all(), (k, 4)).values_list("pk", flat=True))
        for k in range(4)
    ]
    assert set().union(*shards) == every
    assert sum(len(s) for s in shards) == len(every)
    with pytest.raises(ValueError):
        in_shard(Subscription.objects.all(), (4, 4))


def test_close_and_rate_tasks_take_a_shard(api):
    from billing.tasks import close_periods, rate

    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        for n in range(6):
            setup_customer(api, external_id=f"cust{n}")
    ids = list(Subscription.objects.values_list("pk", flat=True))
    even = sum(1 for pk in ids if pk % 2 == 0)
    with time_machine.travel("2026-02-01T00:00:00Z", tick=False):
        assert close_periods.run(shard=[0, 2]) == even
        assert close_periods.run(shard=[1, 2]) == 6 - even
        assert rate.run(shard=[0, 2]) == 0  # no periodically rated price on this plan
        assert close_periods.run() == 0
    assert Invoice.objects.count() == 12
