"""One subscription or invoice the billing run cannot process never stops the others: it
rolls back alone, is logged and recorded as an alert, and the next run retries it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from billing.invoicing import finalization as finalization_module
from billing.models import Alert, Invoice, Subscription, UsageCounter
from billing.periodic import billing_run, invoices_finalize_due, rating_run, subscriptions_close_due
from billing.periodic import rating as rating_module
from plans.models import Price
from tests.billing.scenario import setup_customer, setup_meter, setup_plan

D = Decimal
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
# below the counters' bound (10^26) but, with 20 % tax, above the invoice total's
TOO_MUCH = D("9E+25")
QUANTITY = D("1E+25")  # as a counter can hold it; the accrual is what matters


def _setup(api, customers=("a", "big", "c")) -> dict[str, Subscription]:
    """Postpaid customers on a per-token plan with a base fee; ``big`` pays 20 % tax and
    has accrued more than an invoice can hold."""
    with time_machine.travel(JAN, tick=False):
        setup_meter(api, "tokens", "tokens")
        setup_plan(
            api,
            "pro",
            [{"meter": "tokens", "model": "per_unit", "unit_price": "0.5"}],
            base_fee="10.00",
        )
        for name in customers:
            extra = {"tax_rate": "20"} if name == "big" else {}
            setup_customer(api, external_id=name, plan="pro", overage="invoice", **extra)
    subs = {s.customer.external_id: s for s in Subscription.objects.select_related("customer")}
    UsageCounter.objects.create(
        subscription=subs["big"],
        period_start=JAN,
        period_end=FEB,
        price=Price.objects.get(),
        quantity=QUANTITY,
        billable=QUANTITY,
        accrued=TOO_MUCH,
        events=1,
    )
    return subs


def _fix(sub: Subscription) -> None:
    """What staff would do: correct the accrual."""
    UsageCounter.objects.filter(subscription=sub).update(
        quantity=D(25), billable=D(25), accrued=D("12.5")
    )


def _periods() -> dict[str, datetime]:
    return {
        s.customer.external_id: s.current_period_start
        for s in Subscription.objects.select_related("customer")
    }


@pytest.mark.django_db
def test_a_failing_close_leaves_the_others_closed_and_an_alert(api, caplog):
    subs = _setup(api)
    report = billing_run(as_of=FEB)
    assert report.steps["periods closed"] == 2
    assert report.steps["failed"] == 1
    (failure,) = report.failures
    assert (failure.kind, failure.subscription_id, failure.customer, failure.period_start) == (
        Alert.Kind.CLOSE_FAILED,
        subs["big"].pk,
        "big",
        JAN,
    )
    assert "numeric field overflow" in failure.reason
    assert any(
        line.startswith(f"  failed: period close of subscription {subs['big'].pk}, period from")
        and "(customer big)" in line
        for line in report.lines()
    )
    assert _periods() == {"a": FEB, "big": JAN, "c": FEB}
    assert not Invoice.objects.filter(subscription=subs["big"], period_start=FEB).exists()
    assert Invoice.objects.filter(period_start=FEB).count() == 2
    alert = Alert.objects.get()
    assert (alert.kind, alert.customer_id, alert.subscription_id, alert.period_start) == (
        Alert.Kind.CLOSE_FAILED,
        subs["big"].customer_id,
        subs["big"].pk,
        JAN,
    )
    assert (alert.attempts, alert.resolved_at) == (1, None)
    assert "numeric field overflow" in alert.reason
    logged = [r for r in caplog.records if r.name == "billing.periodic.failures"]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert f"subscription {subs['big'].pk}" in logged[0].getMessage()
    assert "customer big" in logged[0].getMessage()


@pytest.mark.django_db
def test_the_next_run_retries_without_a_second_alert_and_resolves_it_once_fixed(api):
    subs = _setup(api)
    billing_run(as_of=FEB)
    again = billing_run(as_of=FEB)
    assert (again.steps["periods closed"], again.steps["failed"]) == (0, 1)
    alert = Alert.objects.get()  # the same alert, updated
    assert (alert.attempts, alert.resolved_at) == (2, None)
    assert alert.last_failed_at is not None

    _fix(subs["big"])
    fixed = billing_run(as_of=FEB)
    assert (fixed.steps["periods closed"], fixed.steps["failed"]) == (1, 0)
    assert fixed.failures == []
    assert _periods() == {"a": FEB, "big": FEB, "c": FEB}
    invoice = Invoice.objects.get(subscription=subs["big"], period_start=FEB)
    assert invoice.subtotal == D("22.50")  # 12.50 of tokens and the February base fee
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.attempts == 2
    # a later failure of the same subscription opens a new alert
    UsageCounter.objects.filter(subscription=subs["big"]).update(
        period_start=FEB,
        period_end=MAR,
        quantity=QUANTITY,
        billable=QUANTITY,
        accrued=TOO_MUCH,
    )
    assert billing_run(as_of=MAR).steps["failed"] == 1
    assert list(Alert.objects.order_by("pk").values_list("period_start", "resolved_at")) == [
        (JAN, alert.resolved_at),
        (FEB, None),
    ]


@pytest.mark.django_db
def test_a_catching_up_run_skips_the_failed_subscription_for_the_rest_of_the_run(api):
    """Two periods are due; the failing one is tried once per run, not once per round."""
    _setup(api)
    failures: list = []
    assert subscriptions_close_due(now=MAR, failures=failures) == 4  # a and c, twice each
    assert len(failures) == 1
    assert Alert.objects.get().attempts == 1
    assert _periods() == {"a": MAR, "big": JAN, "c": MAR}


@pytest.mark.django_db
def test_run_billing_finishes_the_run_then_exits_non_zero(api):
    subs = _setup(api)
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("run_billing", "--as-of", "2026-02-01T00:00:00Z", stdout=out)
    assert raised.value.returncode == 1
    assert "1 failed" in str(raised.value)
    text = out.getvalue()
    assert "periods closed: 2" in text and "failed: 1" in text
    assert f"failed: period close of subscription {subs['big'].pk}" in text
    assert "ledger: no drift" in text
    _fix(subs["big"])
    out = StringIO()
    call_command("run_billing", "--as-of", "2026-02-01T00:00:00Z", stdout=out)
    assert "periods closed: 1" in out.getvalue() and "failed: 0" in out.getvalue()


@pytest.mark.django_db
def test_close_task_closes_the_others(api):
    from billing.tasks import close_periods

    subs = _setup(api)
    with time_machine.travel(FEB, tick=False):
        assert close_periods.run() == 2
    assert Alert.objects.get().subscription_id == subs["big"].pk


@pytest.mark.django_db
def test_a_failing_rating_leaves_the_others_rated(api, monkeypatch):
    with time_machine.travel(JAN, tick=False):
        setup_meter(api, "gpu", "gpu_seconds", "max")
        setup_plan(
            api,
            "gpu",
            [{"meter": "gpu", "model": "volume", "tiers": [{"up_to": None, "unit_price": "0.1"}]}],
        )
        for name in ("a", "b", "c"):
            setup_customer(api, external_id=name, plan="gpu")
    b = Subscription.objects.get(customer__external_id="b")
    original = rating_module.rated_price

    def rated(*, subscription, **kwargs):
        if subscription.pk == b.pk:
            raise ArithmeticError("cannot rate")
        return original(subscription=subscription, **kwargs)

    monkeypatch.setattr(rating_module, "rated_price", rated)
    with time_machine.travel("2026-01-15T00:00:00Z", tick=False):
        report = rating_run()
        assert (report.counters, report.subscriptions) == (2, 3)
        assert [(f.kind, f.subscription_id) for f in report.failures] == [
            (Alert.Kind.RATING_FAILED, b.pk)
        ]
        assert rating_run().counters == 2
        alert = Alert.objects.get()
        assert (alert.kind, alert.attempts, alert.period_start) == (
            Alert.Kind.RATING_FAILED,
            2,
            JAN,
        )
        assert alert.reason == "ArithmeticError: cannot rate"
        assert set(
            UsageCounter.objects.values_list("subscription__customer__external_id", flat=True)
        ) == {"a", "c"}
        monkeypatch.setattr(rating_module, "rated_price", original)
        assert rating_run().counters == 3
    alert.refresh_from_db()
    assert alert.resolved_at is not None


@pytest.mark.django_db
def test_a_failing_finalization_leaves_the_others_finalized(api, monkeypatch):
    with time_machine.travel(JAN, tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        for name in ("a", "b", "c"):
            setup_customer(api, external_id=name, plan="pro")
    stuck = Invoice.objects.get(customer__external_id="b")
    original = finalization_module.finalize_locked

    def finalize(invoice, now):
        if invoice.pk == stuck.pk:
            raise RuntimeError("printer on fire")
        return original(invoice, now)

    monkeypatch.setattr(finalization_module, "finalize_locked", finalize)
    later = datetime(2026, 1, 3, tzinfo=UTC)
    failures: list = []
    done = invoices_finalize_due(now=later, failures=failures)
    assert len(done) == 2 and stuck.pk not in done
    assert [(f.kind, f.invoice_id, f.customer) for f in failures] == [
        (Alert.Kind.FINALIZE_FAILED, stuck.pk, "b")
    ]
    assert invoices_finalize_due(now=later) == []
    alert = Alert.objects.get()
    assert (alert.invoice_id, alert.subscription_id, alert.attempts) == (
        stuck.pk,
        stuck.subscription_id,
        2,
    )
    stuck.refresh_from_db()
    assert stuck.status == Invoice.Status.DRAFT
    monkeypatch.setattr(finalization_module, "finalize_locked", original)
    report = billing_run(as_of=later)
    assert (report.steps["invoices finalized"], report.steps["failed"]) == (1, 0)
    alert.refresh_from_db()
    assert alert.resolved_at is not None


@pytest.mark.django_db(transaction=True)
def test_worker_processes_isolate_a_failing_close(make_api_client):
    api = make_api_client()
    subs = _setup(api, customers=("a", "big", "c", "d", "e"))
    report = billing_run(as_of=FEB, workers=2)
    assert (report.steps["periods closed"], report.steps["failed"]) == (4, 1)
    assert [f.subscription_id for f in report.failures] == [subs["big"].pk]
    assert Alert.objects.get().subscription_id == subs["big"].pk
    _fix(subs["big"])
    again = billing_run(as_of=FEB, workers=2)
    assert (again.steps["periods closed"], again.steps["failed"]) == (1, 0)
    assert Alert.objects.get().resolved_at is not None


@pytest.mark.django_db
def test_the_admin_lists_open_run_failures_with_their_reason(api, admin_client):
    subs = _setup(api)
    billing_run(as_of=FEB)
    page = admin_client.get("/admin/billing/alert/?open=yes").content.decode()
    assert "Period close failed" in page
    assert "numeric field overflow" in page
    assert f"/admin/billing/subscription/{subs['big'].pk}/change/" in page
    _fix(subs["big"])
    billing_run(as_of=FEB)
    page = admin_client.get("/admin/billing/alert/?open=yes").content.decode()
    assert "numeric field overflow" not in page
    alert = Alert.objects.get()
    detail = admin_client.get(f"/admin/billing/alert/{alert.pk}/change/").content.decode()
    assert "A field with precision 30, scale 4" in detail
