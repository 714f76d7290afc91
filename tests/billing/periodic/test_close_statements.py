"""A period close and a draft's finalization run fixed, prepared statements instead of the
ORM's (``billing_run``'s ``_locked_for_close``, ``_save_closed``, ``COUNTERS_SQL``,
``CHARGE_ITEMS_SQL``, ``invoice_draft_refresh``; ``insert_all`` for the invoice and its
lines; ``refresh_from_row`` after an ``UPDATE … RETURNING``): what they read and write must
be exactly what the ORM's statements read and write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction

from billing.models import Customer, Invoice, InvoiceLine, Subscription
from billing.periodic import billing_run
from billing.periodic.close import CLOSE_FIELDS, _locked_for_close, _save_closed
from core import db as core_db
from core.db import columns, hot_cursor, insert_all, refresh_from_row
from tests.billing.scenario import event, setup_customer, setup_example_c_plan, setup_plan

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.fixture
def subscription(api) -> Subscription:
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        setup_plan(api, "pro", [], base_fee="10.00")
        sub = setup_customer(api, plan="pro")
    Customer.objects.update(metadata={"tier": "gold", "n": [1, "2.50", "é"]}, tax_rate="0.2000")
    return Subscription.objects.get(pk=sub["id"])


def test_the_close_lock_reads_what_the_orm_reads(subscription):
    with transaction.atomic():
        orm = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("customer")
            .get(pk=subscription.pk)
        )
        made = _locked_for_close(subscription.pk)
    assert _fields(made) == _fields(orm)
    assert _fields(made.customer) == _fields(orm.customer)
    assert made.customer.metadata == {"tier": "gold", "n": [1, "2.50", "é"]}
    assert made.customer.tax_rate == Decimal("0.2000")
    assert (made._state.adding, made._state.db) == (False, "default")
    with transaction.atomic():
        assert _locked_for_close(subscription.pk + 1000) is None


def test_the_close_update_writes_what_save_with_update_fields_writes(subscription):
    before = _fields(Subscription.objects.get(pk=subscription.pk))
    changed = {
        "status": Subscription.Status.ENDED,
        "ended_at": at("2026-02-01T00:00:00+00:00"),
        "seats": 3,
        "current_period_start": at("2026-02-01T00:00:00+00:00"),
        "current_period_end": at("2026-03-01T00:00:00+00:00"),
        "billing_anchor": at("2026-02-01T00:00:00+00:00"),
        "next_seats": None,
    }
    with transaction.atomic():
        sub = _locked_for_close(subscription.pk)
        for name, value in changed.items():
            setattr(sub, name, value)
        sub.overage = "not written"  # not a close field: left as it is
        _save_closed(sub)
    after = _fields(Subscription.objects.get(pk=subscription.pk))
    assert after == {**before, **changed}
    assert set(changed) <= set(CLOSE_FIELDS)


def _invoice(subscription, period_start) -> Invoice:
    return Invoice(
        customer=subscription.customer,
        subscription=subscription,
        kind=Invoice.Kind.SUBSCRIPTION,
        currency_id="USD",
        period_start=period_start,
        period_end=at("2026-04-01T00:00:00+00:00"),
        subtotal=Decimal("12.34"),
        tax_rate=Decimal("0.2000"),
        tax=Decimal("2.47"),
        total=Decimal("14.81"),
        issued_at=at("2026-03-01T00:00:00+00:00"),
        due_at=at("2026-03-15T00:00:00+00:00"),
    )


def _lines(invoice) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            invoice=invoice,
            position=0,
            kind=InvoiceLine.Kind.BASE_FEE,
            description="pro base fee",
            quantity=Decimal(1),
            unit_price=Decimal("10.00"),
            amount=Decimal("10.00"),
            amount_exact=Decimal("10.000000000001"),
            period_start=at("2026-03-01T00:00:00+00:00"),
            period_end=invoice.period_end,
            computation={"timing": "in_advance", "nested": {"a": [1, None, "é"]}},
        ),
        InvoiceLine(
            invoice=invoice,
            position=1,
            kind=InvoiceLine.Kind.USAGE,
            description="tokens",
            amount=Decimal("2.34"),
            amount_exact=Decimal("2.335"),
        ),
    ]


@time_machine.travel("2026-03-01T00:00:05Z", tick=False)  # the same created_at for both
def test_insert_all_writes_what_the_orm_writes(subscription):
    orm = _invoice(subscription, at("2026-03-01T00:00:00+00:00"))
    orm.save()
    InvoiceLine.objects.bulk_create(_lines(orm))
    made = _invoice(subscription, at("2026-04-01T00:00:00+00:00"))
    insert_all([made])
    made_lines = _lines(made)
    insert_all(made_lines)

    assert made.pk is not None and made.pk != orm.pk
    assert (made._state.adding, made._state.db) == (False, "default")
    assert [line.pk for line in made_lines] == sorted(line.pk for line in made_lines)

    def stored(invoice) -> tuple[dict, list[dict]]:
        row = _fields(Invoice.objects.get(pk=invoice.pk))
        lines = [_fields(line) for line in InvoiceLine.objects.filter(invoice=invoice)]
        for fields in [row, *lines]:
            del fields["id"]
        for line in lines:
            del line["invoice_id"]
        del row["period_start"]
        return row, lines

    assert stored(made) == stored(orm)
    # the instances hold what was stored, keys included
    assert [_fields(line) for line in made_lines] == [
        _fields(line) for line in InvoiceLine.objects.filter(invoice=made)
    ]
    assert _fields(made) == _fields(Invoice.objects.get(pk=made.pk))


def test_insert_all_raises_djangos_integrity_error_and_writes_nothing(subscription):
    insert_all([_invoice(subscription, at("2026-03-01T00:00:00+00:00"))])
    twin = _invoice(subscription, at("2026-03-01T00:00:00+00:00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_all([twin])  # one subscription invoice per period
    assert twin.pk is None
    assert Invoice.objects.filter(period_start=at("2026-03-01T00:00:00+00:00")).count() == 1
    insert_all([])  # nothing to write: no statement


def test_insert_all_writes_many_rows_in_parts_in_order(subscription, monkeypatch):
    monkeypatch.setattr(core_db, "INSERT_ROWS", 2)
    invoice = _invoice(subscription, at("2026-03-01T00:00:00+00:00"))
    insert_all([invoice])
    lines = [
        InvoiceLine(
            invoice=invoice,
            position=n,
            kind=InvoiceLine.Kind.USAGE,
            description=f"line {n}",
            amount=Decimal(n),
            amount_exact=Decimal(n),
        )
        for n in range(5)
    ]
    insert_all(lines)
    stored = {line.pk: line.position for line in InvoiceLine.objects.filter(invoice=invoice)}
    assert stored == {line.pk: n for n, line in enumerate(lines)}
    assert [line.pk for line in lines] == sorted(stored)


def test_insert_all_refuses_an_instance_with_a_key(subscription):
    invoice = _invoice(subscription, at("2026-03-01T00:00:00+00:00"))
    invoice.pk = 12345
    with pytest.raises(ValueError, match="new instances only"):
        insert_all([invoice])
    assert not Invoice.objects.filter(pk=12345).exists()


def test_refresh_from_row_is_refresh_from_db(subscription):
    invoice = _invoice(subscription, at("2026-03-01T00:00:00+00:00"))
    insert_all([invoice])
    invoice = Invoice.objects.select_related("customer").get(pk=invoice.pk)
    assert Invoice.customer.field.is_cached(invoice)
    with hot_cursor(binary=True) as cursor:
        cursor.execute(
            "UPDATE billing_invoice SET subtotal = 7, tax = 1.4, total = 8.4 "
            f"WHERE id = %s RETURNING {columns(Invoice)}",
            [invoice.pk],
        )
        refresh_from_row(invoice, cursor.fetchone())
    again = Invoice.objects.get(pk=invoice.pk)
    assert _fields(invoice) == _fields(again)
    assert (str(invoice.subtotal), str(invoice.tax)) == ("7.0000", "1.4000")  # the columns' scale
    assert not Invoice.customer.field.is_cached(invoice)
    assert invoice.customer == subscription.customer  # read again when asked


def test_the_grace_job_refreshes_each_draft_as_it_finalizes_it(api, settings):
    settings.BILLFOLD = {**settings.BILLFOLD, "INVOICE_GRACE_HOURS": 24}
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api, base_fee="10.00")
        for customer in ("acme", "beta"):
            setup_customer(api, customer, plan="support", overage="invoice")
            for i in range(3):
                assert event(api, f"{customer}-{i}", customer, "ticket_resolved").status_code == 201
    billing_run(as_of=at("2026-02-01T00:00:00+00:00"))
    drafts = Invoice.objects.filter(period_start=at("2026-02-01T00:00:00+00:00"))
    assert [(i.status, str(i.subtotal)) for i in drafts.order_by("pk")] == [
        ("draft", "12.9700"),  # 3 × 0.99 in arrears, 10.00 in advance
        ("draft", "12.9700"),
    ]
    with time_machine.travel("2026-02-01T10:00:00Z", tick=False):  # late, in the grace period
        late = event(api, "acme-late", "acme", "ticket_resolved", ts="2026-01-31T23:00:00Z")
        assert late.status_code == 201, late.content
    report = billing_run(as_of=at("2026-02-03T00:00:00+00:00"))
    assert report.steps["invoices finalized"] == 2  # the first invoices were, on February 1
    acme, beta = (drafts.get(customer__external_id=c) for c in ("acme", "beta"))
    assert [(i.status, str(i.subtotal), str(i.total)) for i in (acme, beta)] == [
        ("finalized", "13.9600", "13.9600"),
        ("finalized", "12.9700", "12.9700"),
    ]
    lines = [(x.position, x.kind, str(x.quantity), str(x.amount)) for x in acme.lines.all()]
    assert lines == [
        (1, "base_fee", "1.000000000000", "10.0000"),
        (2, "outcome", "4.000000000000", "3.9600"),
    ]
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 5)]
