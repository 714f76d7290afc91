"""Reversing an event whose period is already invoiced (billing/metering/reversal.py): the
accrued part of its charge comes off the invoice — a credit note against a finalized or paid
invoice, a refreshed draft — in the reversal's transaction; a void invoice or a period not
invoiced yet changes nothing more than the counter. Built on docs/charging.md example C (meter
``ticket_resolved``, per unit 0.99, postpaid), with the customer's tax at 19 %."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connections

from billing.invoicing import (
    credit_note_create,
    invoice_creditable,
    invoice_finalize,
    invoice_mark_paid,
    invoice_void,
)
from billing.metering import event_reverse, reversal, reversal_credit_note
from billing.models import Invoice, UsageCounter, UsageEvent
from billing.periodic import billing_run
from core.errors import ValidationFailed
from tests.billing.scenario import event, grant, setup_customer, setup_example_c_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import LedgerTransaction

pytestmark = pytest.mark.django_db

D = Decimal
JANUARY = "2026-01-01T00:00:00"
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


def tickets(api, count: int, *, unit_price: str = "0.99", tax_rate: str = "19", usd=None):
    """``acme`` on plan ``support`` (postpaid) from 2026-01-01 with ``count`` January tickets
    t0, t1, …; with ``usd``, a paid USD grant that pays the first tickets."""
    ensure_currencies()
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api, unit_price)
        setup_customer(api, plan="support", overage="invoice", tax_rate=tax_rate)
        if usd is not None:
            grant(api, "acme", "USD", usd, id="usd")
        for i in range(count):
            r = event(api, f"t{i}", "acme", "ticket_resolved")
            assert r.status_code == 201, r.content


def close_january(*, finalize: bool) -> Invoice:
    """The billing run at 2026-02-01: January's invoice (a draft), finalized if asked."""
    billing_run(as_of=FEBRUARY)
    invoice = Invoice.objects.get(kind=Invoice.Kind.SUBSCRIPTION, period_start=FEBRUARY)
    if finalize:
        invoice = invoice_finalize(invoice_id=invoice.pk, now=datetime(2026, 2, 2, tzinfo=UTC))
    return invoice


def reverse(api, event_id: str, at: str = "2026-02-03T09:00:00Z"):
    with time_machine.travel(at, tick=False):
        r = api.post(f"/api/v1/events/{event_id}/reverse")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "reversed"


def amounts(invoice: Invoice) -> tuple[str, str, str]:
    invoice.refresh_from_db()
    return (str(invoice.subtotal), str(invoice.tax), str(invoice.total))


def credit_notes() -> list[Invoice]:
    return list(Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).order_by("pk"))


def accrued() -> Decimal:
    return UsageCounter.objects.get(period_start=datetime(2026, 1, 1, tzinfo=UTC)).accrued


# --- example C and its after-invoice counterpart ---------------------------------------------


def test_example_c_reversed_before_the_invoice_bills_129_tickets(api):
    """docs/charging.md example C: 130 events in January, one reversed → 129 × 0.99 = 127.71."""
    tickets(api, 130)
    reverse(api, "t3", at="2026-01-20T00:00:00Z")
    invoice = close_january(finalize=True)
    assert [(line.kind, line.quantity, line.amount) for line in invoice.lines.all()] == [
        ("outcome", D(129), D("127.71"))
    ]
    assert amounts(invoice) == ("127.7100", "24.2600", "151.9700")  # 19 % × 127.71 = 24.2649
    assert credit_notes() == []


def test_example_c_reversed_after_finalization_is_credited_0_99_plus_tax(api):
    """The counterpart: the invoice billed 130 × 0.99 = 128.70 (+ 24.45 tax) and is
    finalized; reversing one ticket issues a credit note of 0.99 + 19 % (0.1881 → 0.19)."""
    tickets(api, 130)
    invoice = close_january(finalize=True)
    assert (invoice.number, amounts(invoice)) == (
        "INV-2026-000001",
        ("128.7000", "24.4500", "153.1500"),
    )

    reverse(api, "t3")

    [note] = credit_notes()
    assert (note.number, note.status, note.credit_note_for_id, note.customer_id) == (
        "CN-2026-000001",
        Invoice.Status.FINALIZED,
        invoice.pk,
        invoice.customer_id,
    )
    assert amounts(note) == ("-0.9900", "-0.1900", "-1.1800")
    assert note.reason == "Usage event t3 reversed"
    assert note.tax_rate == D(19) and note.period_start == FEBRUARY
    [line] = note.lines.all()
    assert (line.kind, line.amount) == ("adjustment", D("-0.99"))
    assert line.description.startswith("Reversal of usage event t3: 1 outcomes of ticket_resolved")
    assert "INV-2026-000001" in line.description
    assert {k: line.computation[k] for k in ("reversal_of_event", "event_accrued")} == {
        "reversal_of_event": "t3",
        "event_accrued": "0.99",
    }
    assert (line.computation["line_before"], line.computation["line_after"]) == (
        "128.70",
        "127.71",
    )
    assert reversal_credit_note(event_id="t3") == note
    assert reversal_credit_note(event_id="t4") is None
    # the invoice itself never changes; with its credit note it nets to 129 tickets
    assert amounts(invoice) == ("128.7000", "24.4500", "153.1500")
    assert invoice_creditable(invoice=invoice) == (D("127.7100"), D("24.2600"))
    assert accrued() == D("127.71")
    # once: reversing again changes nothing
    reverse(api, "t3", at="2026-02-04T09:00:00Z")
    assert credit_notes() == [note]


def test_each_reversal_after_the_invoice_gets_its_own_credit_note(api):
    tickets(api, 5, tax_rate="0")
    invoice = close_january(finalize=True)
    assert amounts(invoice) == ("4.9500", "0.0000", "4.9500")
    reverse(api, "t0")
    reverse(api, "t1")
    notes = credit_notes()
    assert [(n.number, n.total) for n in notes] == [
        ("CN-2026-000001", D("-0.99")),
        ("CN-2026-000002", D("-0.99")),
    ]
    assert [reversal_credit_note(event_id=e) for e in ("t0", "t1")] == notes
    assert invoice_creditable(invoice=invoice)[0] == D("2.97")


def test_paid_invoice_is_credited_too(api):
    tickets(api, 3)
    invoice = close_january(finalize=True)
    invoice_mark_paid(invoice_id=invoice.pk, reference="wire 1")
    reverse(api, "t2")
    [note] = credit_notes()
    assert (note.credit_note_for_id, amounts(note)) == (
        invoice.pk,
        ("-0.9900", "-0.1900", "-1.1800"),
    )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_only_the_accrued_part_is_credited_the_wallet_part_is_refunded(api):
    """A USD grant of 1.50 paid t0 (0.99) and 0.51 of t1; t1's other 0.48 accrued. Reversing
    t1 after the invoice refunds 0.51 to the wallet and credits 0.48 on the invoice."""
    tickets(api, 3, tax_rate="0", usd="1.50")
    assert [UsageEvent.objects.get(event_id=e).accrued for e in ("t0", "t1", "t2")] == [
        D(0),
        D("0.48"),
        D("0.99"),
    ]
    invoice = close_january(finalize=True)
    assert amounts(invoice) == ("1.4700", "0.0000", "1.4700")
    reverse(api, "t1")
    [note] = credit_notes()
    assert amounts(note) == ("-0.4800", "0.0000", "-0.4800")
    refund = UsageEvent.objects.get(event_id="t1").reversal_transaction
    assert refund is not None and refund.kind == LedgerTransaction.Kind.REFUND
    wallet = api.get("/api/v1/customers/acme/wallet").json()
    assert {b["asset"]: D(b["available"]) for b in wallet["balances"]}["USD"] == D("0.51")


def test_an_event_the_wallet_paid_in_full_is_not_credited(api):
    tickets(api, 2, tax_rate="0", usd="0.99")  # t0 prepaid, t1 accrued
    invoice = close_january(finalize=True)
    reverse(api, "t0")
    assert credit_notes() == []
    assert amounts(invoice) == ("0.9900", "0.0000", "0.9900")


# --- drafts, void invoices, periods not invoiced yet -------------------------------------------


def test_draft_is_refreshed_at_once_and_finalizes_without_the_event(api):
    tickets(api, 130)
    invoice = close_january(finalize=False)
    assert (invoice.status, amounts(invoice)) == ("draft", ("128.7000", "24.4500", "153.1500"))
    reverse(api, "t3", at="2026-02-01T10:00:00Z")
    # the draft shows it before finalization …
    assert amounts(invoice) == ("127.7100", "24.2600", "151.9700")
    [line] = invoice.lines.all()
    assert (line.quantity, line.amount, line.computation["accrued"]) == (
        D(129),
        D("127.71"),
        "127.710000000000",
    )
    # … and finalization bills it, with no credit note
    invoice = invoice_finalize(invoice_id=invoice.pk, now=datetime(2026, 2, 2, tzinfo=UTC))
    assert amounts(invoice) == ("127.7100", "24.2600", "151.9700")
    assert credit_notes() == []


def test_void_invoice_gets_nothing_more(api):
    tickets(api, 3)
    invoice = close_january(finalize=True)
    invoice_void(invoice_id=invoice.pk)
    reverse(api, "t0")
    assert credit_notes() == []
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    assert accrued() == D("1.98")


def test_period_not_invoiced_yet_only_the_counter_changes(api):
    tickets(api, 3)
    reverse(api, "t0", at="2026-01-20T00:00:00Z")
    assert credit_notes() == []
    assert not Invoice.objects.filter(period_start=FEBRUARY).exists()
    assert accrued() == D("1.98")
    invoice = close_january(finalize=True)
    assert amounts(invoice) == ("1.9800", "0.3800", "2.3600")  # 19 % × 1.98 = 0.3762


def test_event_of_a_later_period_does_not_touch_the_earlier_invoice(api):
    tickets(api, 3, tax_rate="0")
    invoice = close_january(finalize=True)
    with time_machine.travel("2026-02-05T00:00:00Z", tick=False):
        assert event(api, "feb", "acme", "ticket_resolved", ts="2026-02-04T00:00:00Z").status_code
    reverse(api, "feb", at="2026-02-06T00:00:00Z")
    assert credit_notes() == []
    assert amounts(invoice) == ("2.9700", "0.0000", "2.9700")


# --- what is left to credit, rounding, atomicity -----------------------------------------------


def test_credit_is_capped_at_what_is_left_and_skipped_when_nothing_is(api):
    """Finance already credited all but 0.50 of the invoice: the reversal credits the 0.50
    left; a second reversal finds nothing left, issues no credit note and still reverses
    (wallet and counters) — the customer has everything back already."""
    tickets(api, 3, tax_rate="0")
    invoice = close_january(finalize=True)
    credit_note_create(
        invoice_id=invoice.pk,
        lines=[{"description": "Goodwill", "amount": "2.47"}],
        reason="Goodwill",
    )
    reverse(api, "t0")
    manual, capped = credit_notes()
    assert amounts(capped) == ("-0.5000", "0.0000", "-0.5000")
    [line] = capped.lines.all()
    assert line.computation["capped_to_creditable"] == "0.99"
    assert invoice_creditable(invoice=invoice)[0] == D(0)

    reverse(api, "t1")
    assert credit_notes() == [manual, capped]
    assert UsageEvent.objects.get(event_id="t1").status == UsageEvent.Status.REVERSED
    assert accrued() == D("0.99")


def test_sub_cent_charges_credit_the_change_of_the_rounded_line(api):
    """Three tickets at 0.005 accrue 0.015, billed 0.02. Reversed one by one: 0.02 → 0.01
    → 0.01 → 0.00, so credits of 0.01, none, 0.01 — 0.02 in all, never more than billed."""
    tickets(api, 3, unit_price="0.005", tax_rate="0")
    invoice = close_january(finalize=True)
    assert amounts(invoice) == ("0.0200", "0.0000", "0.0200")
    reverse(api, "t0")
    reverse(api, "t1")
    reverse(api, "t2")
    notes = credit_notes()
    assert [n.total for n in notes] == [D("-0.01"), D("-0.01")]
    assert [reversal_credit_note(event_id=e) for e in ("t0", "t1", "t2")] == [
        notes[0],
        None,
        notes[1],
    ]
    assert invoice_creditable(invoice=invoice)[0] == D(0)


def test_a_failing_credit_note_rolls_the_whole_reversal_back(api, monkeypatch):
    tickets(api, 3, tax_rate="0", usd="0.50")  # t0: 0.50 from the wallet, 0.49 accrued
    close_january(finalize=True)
    before = (accrued(), LedgerTransaction.objects.count())

    def refuse(**kwargs):
        raise ValidationFailed("refused for the test")

    monkeypatch.setattr(reversal, "credit_note_create", refuse)
    with time_machine.travel("2026-02-03T09:00:00Z", tick=False), pytest.raises(ValidationFailed):
        event_reverse(event_id="t0")
    t0 = UsageEvent.objects.get(event_id="t0")
    assert (t0.status, t0.reversed_at, t0.reversal_transaction_id) == ("accepted", None, None)
    assert (accrued(), LedgerTransaction.objects.count()) == before
    assert credit_notes() == []

    monkeypatch.undo()
    reverse(api, "t0")
    [note] = credit_notes()
    assert note.total == D("-0.49")


# --- under concurrency (threads, each with its own connection) ---------------------------------


def _in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once (released together by a barrier); results or exceptions."""
    gate = threading.Barrier(len(calls), timeout=30)
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            gate.wait()
            results[index] = calls[index]()
        except Exception as exc:  # recorded: the assertions show it
            results[index] = exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        list(pool.map(run, range(len(calls))))
    return results


@pytest.mark.django_db(transaction=True)
def test_reversals_racing_finalization_and_late_events_bill_each_ticket_once(api, make_api_client):
    """Four customers with six January tickets each and a draft for January. At once, per
    customer: the draft is finalized, t0 and t1 are reversed and a late ticket arrives.
    Whatever the order, no call fails but a late ticket refused as ``period_closed``, and each
    invoice net of its credit notes bills exactly the tickets that stand — 6 − 2, plus the
    late one if it was accepted — as its counter says."""
    ensure_currencies()  # a transaction=True test flushed them
    names = [f"c{n}" for n in range(4)]
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api)
        for name in names:
            setup_customer(api, external_id=name, plan="support", overage="invoice")
            for i in range(6):
                assert event(api, f"{name}-t{i}", name, "ticket_resolved").status_code == 201
    billing_run(as_of=FEBRUARY)
    drafts = {i.customer.external_id: i.pk for i in Invoice.objects.select_related("customer")}
    assert sorted(drafts) == names
    late_clients = [make_api_client(["events"]) for _ in names]

    def late(client, name):
        body = {
            "id": f"{name}-late",
            "customer": name,
            "meter": "ticket_resolved",
            "timestamp": "2026-01-31T23:00:00Z",
        }
        r = client.post("/api/v1/events", body, format="json")
        return r.status_code, (r.json().get("code") if r.status_code != 201 else None)

    finalized_at = datetime(2026, 2, 2, tzinfo=UTC)
    calls: list[Callable[[], Any]] = []
    for name, client in zip(names, late_clients, strict=True):
        calls += [
            lambda pk=drafts[name]: invoice_finalize(invoice_id=pk, now=finalized_at),
            lambda name=name: event_reverse(event_id=f"{name}-t0"),
            lambda name=name: event_reverse(event_id=f"{name}-t1"),
            lambda client=client, name=name: late(client, name),
        ]
    results = _in_threads(calls)
    assert not [r for r in results if isinstance(r, Exception)], results
    for n, name in enumerate(names):
        late_status = results[4 * n + 3]
        assert late_status in {(201, None), (422, "period_closed")}, late_status
        tickets_standing = 4 + (late_status[0] == 201)
        invoice = Invoice.objects.get(pk=drafts[name])
        assert invoice.status == Invoice.Status.FINALIZED
        notes = invoice.credit_notes.all()
        assert all(n.total == D("-0.99") for n in notes)
        net = invoice.subtotal + sum((n.subtotal for n in notes), D(0))
        assert net == D("0.99") * tickets_standing, (name, late_status, invoice.subtotal)
        counter = UsageCounter.objects.get(subscription__customer__external_id=name)
        assert counter.accrued == net
    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    credit = [x for x in numbers if x.startswith("CN-")]
    assert credit == [f"CN-2026-{k:06d}" for k in range(1, len(credit) + 1)]
