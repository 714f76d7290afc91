"""The invoices API (docs/api.md "Invoices"): exact shapes, actions, scopes, and bad input that
answers a 4xx problem and writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from billing.invoicing import LineSpec, invoice_finalize
from billing.models import Invoice, InvoiceSequence
from tests.api.helpers import problem_of
from wallets.models import IdempotencyRecord

from .conftest import T0

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(customer, make_draft):
    return make_draft(
        customer,
        [
            LineSpec(
                kind="seats",
                description="Team, 2 seats from 2026-01-16",
                amount_exact=Decimal("20.645161290323"),
                quantity=Decimal("2"),
                unit_price=Decimal("20"),
                period_start=T0,
                period_end=T0 + timedelta(days=16),
            ),
            "100",
        ],
        now=T0,
    )


def test_invoice_detail_has_the_contract_shape(api, draft):
    r = api.get(f"/api/v1/invoices/{draft.pk}")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "id": draft.pk,
        "number": None,
        "customer": "acme",
        "kind": "one_off",
        "status": "draft",
        "currency": "USD",
        "period": {"start": None, "end": None},
        "lines": [
            {
                "description": "Team, 2 seats from 2026-01-16",
                "kind": "seats",
                "meter": None,
                "quantity": "2",
                "unit_price": "20",
                "amount": "20.65",
            },
            {
                "description": "Line 2",
                "kind": "adjustment",
                "meter": None,
                "quantity": None,
                "unit_price": None,
                "amount": "100.00",
            },
        ],
        "subtotal": "120.65",
        "tax_rate": "19",
        "tax": "22.92",
        "total": "143.57",
        "issued_at": "2026-03-02T09:00:00+00:00",
        "due_at": "2026-03-16T09:00:00+00:00",
        "finalized_at": None,
        "paid_at": None,
        "payment_reference": "",
        "voided_at": None,
        "credit_note_for": None,
        "reason": "",
    }


def test_amounts_use_the_currency_minor_unit(api, make_customer, make_draft):
    yen = make_draft(make_customer("yen", currency="JPY", tax_rate="10"), ["20.5"])
    dinar = make_draft(make_customer("dinar", currency="KWD"), ["1.2345"])
    body = api.get(f"/api/v1/invoices/{yen.pk}").json()
    assert (body["lines"][0]["amount"], body["subtotal"], body["tax"], body["total"]) == (
        "21",
        "21",
        "2",  # 2.1
        "23",
    )
    body = api.get(f"/api/v1/invoices/{dinar.pk}").json()
    assert (body["subtotal"], body["total"]) == ("1.235", "1.235")


def test_list_filters_and_paginates(api, customer, make_customer, make_draft):
    other = make_customer("globex")
    mine = [make_draft(customer) for _ in range(3)]
    theirs = make_draft(other)
    invoice_finalize(invoice_id=mine[0].pk)
    r = api.get("/api/v1/invoices")
    assert [i["id"] for i in r.json()["results"]] == [theirs.pk, *(m.pk for m in reversed(mine))]
    r = api.get("/api/v1/invoices", {"customer": "acme", "status": "draft", "limit": 1})
    page = r.json()
    assert [i["id"] for i in page["results"]] == [mine[2].pk]
    page = api.get(page["next"]).json()
    assert [i["id"] for i in page["results"]] == [mine[1].pk]
    assert page["next"] is None
    finalized = api.get("/api/v1/invoices", {"status": "finalized"}).json()["results"]
    assert [(i["id"], i["number"]) for i in finalized] == [(mine[0].pk, "INV-2026-000001")]
    problem_of(api.get("/api/v1/invoices", {"status": "open"}), 400, "invalid")
    problem_of(api.get("/api/v1/invoices", {"customer": "nobody"}), 404, "not_found")


@pytest.mark.parametrize("bad", ["999999", "abc", "1.5", "-1", "99999999999999999999", "%00"])
def test_unknown_or_malformed_ids_are_404_problems(api, draft, bad):
    for method, suffix, body in [
        ("get", "", None),
        ("get", "/pdf", None),
        ("post", "/finalize", {}),
        ("post", "/void", {}),
        ("post", "/mark-paid", {"reference": "wire"}),
        ("post", "/credit-notes", {"lines": [{"description": "x", "amount": "1"}], "reason": "r"}),
    ]:
        r = getattr(api, method)(f"/api/v1/invoices/{bad}{suffix}", body, format="json")
        problem_of(r, 404, "not_found")
    assert Invoice.objects.count() == 1


def test_finalize_void_mark_paid_round_trip(api, draft, customer, make_draft):
    r = api.post(f"/api/v1/invoices/{draft.pk}/finalize")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["status"], body["number"]) == ("finalized", "INV-2026-000001")
    assert body["finalized_at"] is not None
    assert api.post(f"/api/v1/invoices/{draft.pk}/finalize").json()["number"] == "INV-2026-000001"

    problem_of(
        api.post(f"/api/v1/invoices/{draft.pk}/mark-paid", {}, format="json"), 400, "invalid"
    )
    r = api.post(f"/api/v1/invoices/{draft.pk}/mark-paid", {"reference": "wire 77"}, format="json")
    assert (r.status_code, r.json()["status"], r.json()["payment_reference"]) == (
        200,
        "paid",
        "wire 77",
    )
    body = problem_of(api.post(f"/api/v1/invoices/{draft.pk}/void"), 409, "invoice_paid")
    assert "credit note" in body["detail"]
    problem_of(api.post(f"/api/v1/invoices/{draft.pk}/finalize"), 409, "invoice_not_draft")

    other = make_draft(customer)
    problem_of(
        api.post(f"/api/v1/invoices/{other.pk}/mark-paid", {"reference": "x"}, format="json"),
        409,
        "invoice_not_finalized",
    )
    r = api.post(f"/api/v1/invoices/{other.pk}/void")
    assert (r.status_code, r.json()["status"], r.json()["number"]) == (
        200,
        "void",
        "INV-2026-000002",
    )


def test_mark_paid_without_a_reference_writes_nothing(api, draft):
    invoice_finalize(invoice_id=draft.pk)
    for body in ({}, {"reference": ""}, {"reference": "   "}, {"reference": "x" * 256}):
        r = api.post(
            f"/api/v1/invoices/{draft.pk}/mark-paid", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        problem = problem_of(r, 400, "invalid")
        assert list(problem["errors"]) == ["reference"]
    draft.refresh_from_db()
    assert (draft.status, draft.payment_reference) == ("finalized", "")
    assert IdempotencyRecord.objects.count() == 0


def test_credit_note_round_trip(api, draft):
    invoice_finalize(invoice_id=draft.pk)
    body = {"lines": [{"description": "Seat refund", "amount": "20.65"}], "reason": "Mistake"}
    r = api.post(
        f"/api/v1/invoices/{draft.pk}/credit-notes", body, format="json", HTTP_IDEMPOTENCY_KEY="cn1"
    )
    assert r.status_code == 201, r.content
    note = r.json()
    assert {k: note[k] for k in ("kind", "status", "number", "credit_note_for", "reason")} == {
        "kind": "credit_note",
        "status": "finalized",
        "number": "CN-2026-000001",
        "credit_note_for": draft.pk,
        "reason": "Mistake",
    }
    assert (note["subtotal"], note["tax"], note["total"]) == ("-20.65", "-3.92", "-24.57")
    assert note["lines"] == [
        {
            "description": "Seat refund",
            "kind": "adjustment",
            "meter": None,
            "quantity": "1",
            "unit_price": "-20.65",
            "amount": "-20.65",
        }
    ]
    replay = api.post(
        f"/api/v1/invoices/{draft.pk}/credit-notes", body, format="json", HTTP_IDEMPOTENCY_KEY="cn1"
    )
    assert (replay.status_code, replay.json(), replay["Idempotent-Replayed"]) == (201, note, "true")
    assert Invoice.objects.filter(kind="credit_note").count() == 1

    over = {"lines": [{"description": "All", "amount": "100.01"}], "reason": "r"}
    problem = problem_of(
        api.post(f"/api/v1/invoices/{draft.pk}/credit-notes", over, format="json"),
        409,
        "credit_note_exceeds_invoice",
    )
    assert problem["creditable"] == "100.0000"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": [{"description": "x", "amount": "-5"}], "reason": "r"}, "lines[0].amount"),
        ({"lines": [{"description": "x", "amount": "1.001"}], "reason": "r"}, "lines[0].amount"),
        (
            {"lines": [{"description": "x", "amount": "0.0000000000001"}], "reason": "r"},
            "lines[0].amount",
        ),
        ({"lines": [{"description": "x", "amount": "NaN"}], "reason": "r"}, "lines[0].amount"),
        ({"lines": [{"description": "x", "amount": "1e30"}], "reason": "r"}, "lines[0].amount"),
        ({"lines": [{"description": "x", "amount": True}], "reason": "r"}, "lines[0].amount"),
        ({"lines": [], "reason": "r"}, "lines"),
        ({"lines": "x", "reason": "r"}, "lines"),
        ({"lines": [{"amount": "1"}], "reason": "r"}, "lines[0].description"),
        ({"lines": [{"description": "x", "amount": "1"}]}, "reason"),
        ({"lines": [{"description": "x", "amount": "1"}], "reason": "r" * 100_000}, "reason"),
        ({"lines": [{"description": "<script>", "amount": "1"}] * 101, "reason": "r"}, "lines"),
    ],
)
def test_bad_credit_notes_are_400_and_write_nothing(api, draft, body, field):
    invoice_finalize(invoice_id=draft.pk)
    r = api.post(
        f"/api/v1/invoices/{draft.pk}/credit-notes", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    problem = problem_of(r, 400, "invalid")
    assert field in problem["errors"], problem
    assert Invoice.objects.count() == 1
    assert not InvoiceSequence.objects.filter(prefix="CN").exists()
    assert IdempotencyRecord.objects.count() == 0


def test_malformed_json_is_400(api, draft):
    r = api.post(f"/api/v1/invoices/{draft.pk}/credit-notes", "{", content_type="application/json")
    problem_of(r, 400, "malformed")


def test_scopes(make_api_client, draft):
    reader = make_api_client(["read"])
    assert reader.get(f"/api/v1/invoices/{draft.pk}").status_code == 200
    for suffix in ("finalize", "void"):
        problem_of(reader.post(f"/api/v1/invoices/{draft.pk}/{suffix}"), 403, "forbidden")
    events_only = make_api_client(["events"])
    problem_of(events_only.get("/api/v1/invoices"), 403, "forbidden")
    problem_of(events_only.get("/api/v1/customers/acme/statements/2026-03"), 403, "forbidden")
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_pdf_download(api, draft):
    r = api.get(f"/api/v1/invoices/{draft.pk}/pdf", HTTP_ACCEPT="application/pdf")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/pdf"
    assert r["Content-Disposition"] == f'inline; filename="draft-{draft.pk}.pdf"'
    assert r.content.startswith(b"%PDF-")
    invoice_finalize(invoice_id=draft.pk)
    r = api.get(f"/api/v1/invoices/{draft.pk}/pdf")
    assert r["Content-Disposition"] == 'inline; filename="INV-2026-000001.pdf"'
    # an error stays a problem whatever the client accepts
    problem_of(api.get("/api/v1/invoices/0/pdf", HTTP_ACCEPT="application/pdf"), 404, "not_found")


def test_statement_formats_and_bad_months(api, customer):
    r = api.get("/api/v1/customers/acme/statements/2026-03")
    assert r.status_code == 200
    assert r.json() == {
        "customer": "acme",
        "month": "2026-03",
        "period": {"start": "2026-03-01T00:00:00+00:00", "end": "2026-04-01T00:00:00+00:00"},
        "assets": [],
        "invoices": [],
    }
    r = api.get("/api/v1/customers/acme/statements/2026-03", {"format": "csv"})
    assert (r.status_code, r["Content-Type"]) == (200, "text/csv; charset=utf-8")
    assert r["Content-Disposition"] == 'attachment; filename="statement-acme-2026-03.csv"'
    assert r.content.decode() == "kind,asset,item,meter,status,date,amount\r\n"
    r = api.get("/api/v1/customers/acme/statements/2026-03", {"format": "pdf"})
    assert (r.status_code, r["Content-Type"]) == (200, "application/pdf")
    assert r.content.startswith(b"%PDF-")
    problem_of(
        api.get("/api/v1/customers/acme/statements/2026-03", {"format": "xml"}), 400, "invalid"
    )
    for bad in ("2026-13", "2026-3", "26-03", "2026-03-01", "1999-12", "abcd-ef"):
        problem_of(api.get(f"/api/v1/customers/acme/statements/{bad}"), 404, "not_found")
    problem_of(api.get("/api/v1/customers/nobody/statements/2026-03"), 404, "not_found")


def test_problem_bodies_are_json(api):
    r = api.get("/api/v1/invoices/abc")
    assert json.loads(r.content)["code"] == "not_found"
