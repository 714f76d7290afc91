"""docs/charging.md example C end to end over the API: the period closes into a draft, an event
that arrives during the grace period still lands on it, finalization numbers it, and then the
period is closed to late events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from billing.models import Invoice
from billing.periodic import billing_run
from tests.api.helpers import problem_of
from tests.billing.scenario import event, setup_customer, setup_example_c_plan
from tests.wallets.helpers import ensure_currencies

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_example_c_through_grace_and_finalization(api, settings):
    ensure_currencies()
    settings.BILLFOLD = {**settings.BILLFOLD, "INVOICE_GRACE_HOURS": 24}
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        setup_example_c_plan(api)
        setup_customer(api, plan="support", overage="invoice", tax_rate="19")
        for i in range(130):
            assert event(api, f"t{i}", "acme", "ticket_resolved").status_code == 201
        assert api.post("/api/v1/events/t3/reverse").status_code == 200
    billing_run(as_of=at("2026-02-01T00:00:00"))
    invoice = Invoice.objects.get()
    r = api.get(f"/api/v1/invoices/{invoice.pk}")
    body = r.json()
    assert (body["status"], body["number"], body["subtotal"], body["total"]) == (
        "draft",
        None,
        "127.71",
        "151.97",  # 19 % of 127.71 = 24.2649 → 24.26
    )

    with time_machine.travel("2026-02-01T10:00:00Z", tick=False):
        # a January event arriving in the grace period is still accepted
        late = event(api, "late-1", "acme", "ticket_resolved", ts="2026-01-31T23:00:00Z")
        assert late.status_code == 201, late.content
    with time_machine.travel("2026-02-01T12:00:00Z", tick=False):
        r = api.post(f"/api/v1/invoices/{invoice.pk}/finalize")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["status"], body["number"]) == ("finalized", "INV-2026-000001")
    # 130 × 0.99 = 128.70, tax 24.453 → 24.45
    assert [(x["kind"], x["quantity"], x["amount"]) for x in body["lines"]] == [
        ("outcome", "130", "128.70")
    ]
    assert (body["subtotal"], body["tax"], body["total"]) == ("128.70", "24.45", "153.15")

    with time_machine.travel("2026-02-01T13:00:00Z", tick=False):
        problem_of(
            event(api, "late-2", "acme", "ticket_resolved", ts="2026-01-31T23:30:00Z"),
            422,
            "period_closed",
        )
    # the grace job finds nothing left to do
    assert billing_run(as_of=at("2026-02-03T00:00:00")).steps["invoices finalized"] == 0
    statement = api.get("/api/v1/customers/acme/statements/2026-02").json()
    assert [(i["number"], i["total"]) for i in statement["invoices"]] == [
        ("INV-2026-000001", "153.15")
    ]
