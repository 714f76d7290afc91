"""A postpaid usage line whose period the wallet paid in part: the usage line bills quantity
× unit price, a ``paid_from_wallet`` line takes off what the wallet paid, and the pair bills
what accrued, rounded once — the same total as the accrued amount alone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from billing.invoicing import invoice_finalize
from billing.invoicing.documents import invoice_html, invoice_pdf
from billing.models import Invoice, InvoiceLine
from billing.periodic import billing_run
from tests.billing.scenario import event, grant, setup_customer, setup_example_c_plan
from tests.wallets.helpers import ensure_currencies

pytestmark = pytest.mark.django_db

D = Decimal
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


def january_invoice(api, *, unit_price: str, usd: str | None, count: int = 3) -> Invoice:
    """``acme`` on the postpaid plan ``support`` with ``count`` January tickets; with ``usd``,
    a paid USD grant first. Returns January's draft, made by the billing run."""
    ensure_currencies()
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api, unit_price)
        setup_customer(api, plan="support", overage="invoice", tax_rate="0")
        if usd is not None:
            grant(api, "acme", "USD", usd, id="usd")
        for i in range(count):
            assert event(api, f"t{i}", "acme", "ticket_resolved").status_code == 201
    billing_run(as_of=FEBRUARY)
    return Invoice.objects.get(kind=Invoice.Kind.SUBSCRIPTION, period_start=FEBRUARY)


def rows(invoice: Invoice) -> list[tuple]:
    return [
        (line.kind, line.quantity, line.unit_price, line.amount_exact, line.amount)
        for line in invoice.lines.all()
    ]


def test_usage_line_shows_quantity_times_price_and_the_wallet_part_is_its_own_line(api):
    """3 × 1.115 = 3.345; the 2.00 grant paid 2.00 of it, 1.345 accrued (1.35 billed)."""
    invoice = january_invoice(api, unit_price="1.115", usd="2.00")
    assert rows(invoice) == [
        ("outcome", D(3), D("1.115"), D("3.345"), D("3.35")),
        ("paid_from_wallet", None, None, D("-2"), D("-2.00")),
    ]
    assert (invoice.subtotal, invoice.total) == (D("1.35"), D("1.35"))  # as before: round(1.345)
    usage, paid = invoice.lines.all()
    assert usage.quantity * usage.unit_price == usage.amount_exact
    assert paid.computation == {
        "price": usage.computation["price"],
        "usage": "3.345000000000",
        "paid_from_wallet": "2.000000000000",
        "accrued": "1.345000000000",
    }
    assert sum(line.amount for line in invoice.lines.all()) == invoice.subtotal

    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert [(x["kind"], x["quantity"], x["unit_price"], x["amount"]) for x in body["lines"]] == [
        ("outcome", "3", "1.115", "3.35"),
        ("paid_from_wallet", None, None, "-2.00"),
    ]
    assert body["lines"][1]["description"] == (
        "ticket_resolved: paid from wallet, 2026-01-01 – 2026-02-01"
    )
    assert (body["subtotal"], body["total"]) == ("1.35", "1.35")

    html = invoice_html(invoice)
    assert "Paid from wallet" in html and "-2.00" in html and "3.35" in html
    assert invoice_pdf(invoice).startswith(b"%PDF")

    # finalizing refreshes the usage lines from the counters: the same pair
    invoice = invoice_finalize(invoice_id=invoice.pk, now=datetime(2026, 2, 2, tzinfo=UTC))
    assert rows(invoice)[1][0] == "paid_from_wallet" and invoice.total == D("1.35")


def test_wallet_part_under_a_cent_nets_to_the_accrued_amount_rounded_once(api):
    """t0 accrued 0.3345 (the wallet was empty); a 1.00 grant then paid t1's 0.3345. The
    usage line is 0.669 → 0.67; the wallet line is the change it makes, 0.33 − 0.67 = −0.34
    (round(−0.3345) alone would be −0.33 and bill 0.34), so the invoice still bills 0.33."""
    ensure_currencies()
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api, "0.3345")
        setup_customer(api, plan="support", overage="invoice", tax_rate="0")
        assert event(api, "t0", "acme", "ticket_resolved").status_code == 201
        grant(api, "acme", "USD", "1.00", id="usd")
        assert event(api, "t1", "acme", "ticket_resolved").status_code == 201
    billing_run(as_of=FEBRUARY)
    invoice = Invoice.objects.get(kind=Invoice.Kind.SUBSCRIPTION, period_start=FEBRUARY)
    assert rows(invoice) == [
        ("outcome", D(2), D("0.3345"), D("0.669"), D("0.67")),
        ("paid_from_wallet", None, None, D("-0.3345"), D("-0.34")),
    ]
    assert invoice.subtotal == D("0.33")


def test_no_wallet_line_when_the_wallet_paid_nothing(api):
    invoice = january_invoice(api, unit_price="0.99", usd=None)
    assert rows(invoice) == [("outcome", D(3), D("0.99"), D("2.97"), D("2.97"))]
    assert not InvoiceLine.objects.filter(kind=InvoiceLine.Kind.PAID_FROM_WALLET).exists()


def test_usage_the_wallet_paid_in_full_is_not_invoiced(api):
    invoice = january_invoice(api, unit_price="0.99", usd="2.97")
    assert rows(invoice) == [] and invoice.total == 0


def test_admin_shows_the_wallet_line(api, admin_client):
    invoice = january_invoice(api, unit_price="1.115", usd="2.00")
    page = admin_client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Paid from wallet" in text and "ticket_resolved: paid from wallet" in text
    assert "-2.00" in text
