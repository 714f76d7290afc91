"""Every decimal in an answer is plain text (``format(d, "f")``): a zero at 12 places is
``"0.000000000000"``, never ``str``'s ``"0E-12"``, in problem members above all."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.api.errors import problem
from tests.wallets.helpers import ensure_currencies
from wallets.errors import InsufficientFunds

from .scenario import event, grant, setup_customer, setup_meter, setup_plan

ZERO_12 = Decimal("0E-12")  # what a numeric(38, 12) zero reads back as


def test_a_domain_errors_extra_members_write_decimals_as_plain_text():
    error = InsufficientFunds(
        "No.", extra={"available": ZERO_12, "legs": [{"held": Decimal("1E+2")}], "asset": "USD"}
    )
    assert error.extra == {
        "available": "0.000000000000",
        "legs": [{"held": "100"}],
        "asset": "USD",
    }


def test_a_problems_extension_members_write_decimals_as_plain_text():
    body = problem(status=402, code="x", title="X", spent=ZERO_12, nested={"a": [ZERO_12]})
    assert (body["spent"], body["nested"]) == ("0.000000000000", {"a": ["0.000000000000"]})


@pytest.fixture
def limited(api, clock):
    ensure_currencies()
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(
        api,
        "metered",
        [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.000002"}],
    )
    setup_customer(api, plan="metered")
    grant(api, "acme", "USD", "100.00", id="g1")
    r = api.put(
        "/api/v1/customers/acme/spend-limit", {"amount": "1.00", "mode": "hard"}, format="json"
    )
    assert r.status_code == 200, r.content


def _spend_problem(response) -> dict:
    assert response.status_code == 402, response.content
    body = response.json()
    assert body["code"] == "spend_limit_exceeded"
    return body


@pytest.mark.django_db
def test_a_spend_limit_refusal_with_nothing_spent_says_zero_in_plain_text(api, limited):
    body = _spend_problem(event(api, "e1", "acme", "llm_tokens", "3000000"))
    assert (body["spent"], body["held"]) == ("0.000000000000", "0")
    assert body["limit"] == "1.000000000000"
    hold = {"id": "h1", "customer": "acme", "meter": "llm_tokens", "quantity": "3000000"}
    body = _spend_problem(api.post("/api/v1/holds", hold, format="json"))
    assert body["spent"] == "0.000000000000"
    assert "E" not in body["held"]


@pytest.mark.django_db
def test_an_invoice_lines_computation_writes_zeros_in_plain_text(api, clock):
    """The computation the admin shows beside a line: a period with nothing included (a
    numeric zero read back as ``0E-12``) still reads ``"0.000000000000"``."""
    from datetime import UTC, datetime

    from billing.models import InvoiceLine, Subscription
    from billing.periodic import subscription_period_close

    ensure_currencies()
    setup_meter(api, "llm_tokens", "tokens")
    setup_plan(api, "pro", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.01"}])
    setup_customer(api, plan="pro", overage="invoice")
    assert event(api, "e1", "acme", "llm_tokens", "100").status_code == 201

    subscription_period_close(
        subscription_id=Subscription.objects.get().pk,
        now=datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC),
    )

    usage = InvoiceLine.objects.get(kind=InvoiceLine.Kind.USAGE)
    assert usage.computation["included"] == "0.000000000000"
    texts = [v for line in InvoiceLine.objects.all() for v in line.computation.values()]
    assert not [t for t in texts if isinstance(t, str) and "E" in t], texts
