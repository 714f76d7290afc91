"""The invoice admin: Finance finalizes, voids and marks paid through list actions (mark paid
and void ask first), issues credit notes, downloads PDFs; Auditors read only. The change page
shows how each line was computed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse

from billing.invoicing import LineSpec, invoice_finalize, invoice_mark_paid
from billing.models import Invoice
from billing.staff import AUDITOR, FINANCE
from tests.admin.conftest import form_data

from .conftest import T0

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:billing_invoice_changelist")


def change(invoice: Invoice, view: str = "change") -> str:
    return reverse(f"admin:billing_invoice_{view}", args=[invoice.pk])


def staff_client(client, django_user_model, username: str, group: str | None):
    user = django_user_model.objects.create_user(username=username, password="x", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    else:
        user.is_superuser = True
        user.save()
    client.force_login(user)
    return client


@pytest.fixture
def finance(client, django_user_model):
    return staff_client(client, django_user_model, "fiona", FINANCE)


@pytest.fixture
def auditor(client, django_user_model):
    return staff_client(client, django_user_model, "audrey", AUDITOR)


def act(client, action: str, invoices, **extra):
    data = {"action": action, "_selected_action": [i.pk for i in invoices], **extra}
    return client.post(CHANGELIST, data)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_finance_finalizes_from_the_list(finance, customer, make_draft):
    drafts = [make_draft(customer) for _ in range(2)]
    response = act(finance, "finalize_invoices", drafts, index="0")
    assert response.status_code == 302
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    year = Invoice.objects.values_list("finalized_at__year", flat=True).first()
    assert numbers == [f"INV-{year}-000001", f"INV-{year}-000002"]
    assert [i.status for i in Invoice.objects.all()] == ["finalized", "finalized"]
    page = finance.get(CHANGELIST)
    assert any(m.startswith("Finalized: INV-") for m in messages_of(page))
    logs = LogEntry.objects.filter(object_id__in=[str(d.pk) for d in drafts])
    assert logs.count() == 2
    assert {entry.user.username for entry in logs} == {"fiona"}
    # again: nothing changes, and the page says so
    act(finance, "finalize_invoices", drafts, index="0")
    assert LogEntry.objects.filter(object_id__in=[str(d.pk) for d in drafts]).count() == 2


def test_mark_paid_asks_for_a_reference(finance, customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer).pk)
    page = act(finance, "mark_invoices_paid", [invoice], index="0")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Mark invoices paid" in html and str(invoice) in html
    data = form_data(html)
    assert data["_selected_action"] == [str(invoice.pk)]
    assert data["action"] == ["mark_invoices_paid"]

    data["reference"] = [""]
    again = finance.post(CHANGELIST, data)
    assert again.status_code == 200
    assert "This field is required." in again.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == "finalized"

    data["reference"] = ["wire 2026-03-04"]
    done = finance.post(CHANGELIST, data)
    assert done.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_reference) == ("paid", "wire 2026-03-04")


def test_void_confirms_and_refusals_are_reported(finance, customer, make_draft):
    paid = invoice_finalize(invoice_id=make_draft(customer).pk)
    invoice_mark_paid(invoice_id=paid.pk, reference="card")
    open_ = invoice_finalize(invoice_id=make_draft(customer).pk)
    page = act(finance, "void_invoices", [paid, open_], index="0")
    assert page.status_code == 200
    assert Invoice.objects.filter(status="void").count() == 0  # nothing before confirming
    response = finance.post(CHANGELIST, form_data(page.content.decode()), follow=True)
    open_.refresh_from_db()
    paid.refresh_from_db()
    assert (open_.status, paid.status) == ("void", "paid")
    texts = messages_of(response)
    assert f"Voided: {open_.number}." in texts
    assert any(t.startswith(f"Not void: {paid.number}: ") and "credit note" in t for t in texts)


def test_auditors_cannot_act_but_can_read_and_download(auditor, customer, make_draft):
    draft = make_draft(customer)
    page = auditor.get(CHANGELIST)
    assert page.status_code == 200
    assert "finalize_invoices" not in page.content.decode()
    act(auditor, "finalize_invoices", [draft], index="0")
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert auditor.get(change(draft, "credit_note")).status_code == 403
    pdf = auditor.get(change(draft, "pdf"))
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")
    assert pdf.content.startswith(b"%PDF-")
    assert pdf["Content-Disposition"] == f'attachment; filename="draft-{draft.pk}.pdf"'


def test_change_page_shows_the_computation_and_tools(finance, customer, make_draft):
    draft = make_draft(
        customer,
        [
            LineSpec(
                kind="seats",
                description="2 seats from 2026-01-16",
                amount_exact=Decimal("20.645161290323"),
                quantity=Decimal(2),
                unit_price=Decimal(20),
                computation={"seats": 2, "fraction": "16/31", "note": "<b>prorated</b>"},
            )
        ],
        now=T0,
    )
    html = finance.get(change(draft)).content.decode()
    assert "20.645161290323 → 20.65" in html
    assert "<li>fraction: 16/31</li>" in html
    assert "<li>note: &lt;b&gt;prorated&lt;/b&gt;</li>" in html
    assert f'href="{change(draft, "pdf")}"' in html
    assert change(draft, "credit_note") not in html  # drafts are not credited
    final = invoice_finalize(invoice_id=draft.pk)
    html = finance.get(change(final)).content.decode()
    assert f'href="{change(final, "credit_note")}"' in html
    printable = finance.get(change(final, "html")).content.decode()
    assert "INV-2026-000001" in printable


def test_credit_note_page(finance, customer, make_draft):
    invoice = invoice_finalize(invoice_id=make_draft(customer, ["100"]).pk)
    page = finance.get(change(invoice, "credit_note"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "100.00 USD" in html  # left to credit
    data = form_data(html)
    data.update(description=["Goodwill"], amount=["10.005"], reason=["Outage"])
    refused = finance.post(change(invoice, "credit_note"), data)
    assert refused.status_code == 200
    assert "At most 2 decimal places." in refused.content.decode()
    assert Invoice.objects.filter(kind="credit_note").count() == 0

    data.update(amount=["10.00"])
    done = finance.post(change(invoice, "credit_note"), data)
    note = Invoice.objects.get(kind="credit_note")
    assert done.status_code == 302 and done["Location"] == change(note)
    assert (note.number, note.total) == ("CN-2026-000001", Decimal("-11.9000"))
    # the same form submitted twice makes one credit note
    assert finance.post(change(invoice, "credit_note"), data).status_code == 302
    assert Invoice.objects.filter(kind="credit_note").count() == 1
    assert LogEntry.objects.filter(object_id=str(note.pk)).count() == 1


def test_list_filters_and_date_hierarchy(finance, make_customer, make_draft):
    usd = make_customer("usd-co")
    eur = make_customer("eur-co", currency="EUR")
    make_draft(usd)
    invoice_finalize(invoice_id=make_draft(eur).pk)
    for query, count in (
        ("", 2),
        ("status__exact=draft", 1),
        ("kind__exact=one_off", 2),
        ("kind__exact=credit_note", 0),
        ("currency__code__exact=EUR", 1),
    ):
        response = finance.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200, query
        assert response.context["cl"].result_count == count, query
    assert finance.get(CHANGELIST).context["cl"].date_hierarchy == "period_start"
