"""Customers in several currencies, drafts made through the invoices service, and the ledger
check after every test (statements read the ledger)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.invoicing import LineSpec, invoice_draft_create
from billing.models import Customer, Invoice, InvoiceLine
from tests.factories import CustomerFactory
from tests.wallets.helpers import ensure_currencies
from wallets.selectors import ledger_reconcile

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def reconciled_ledger(request):
    """After every test that touched the database, the ledger reconciles exactly."""
    yield
    if any(m.name == "django_db" for m in request.node.iter_markers()) or {
        "db",
        "transactional_db",
    } & set(request.fixturenames):
        drifts = ledger_reconcile()
        assert drifts == [], "\n".join(map(str, drifts))


@pytest.fixture
def make_customer(db) -> Callable[..., Customer]:
    def make(
        external_id: str = "acme",
        *,
        currency: str = "USD",
        tax_rate: str = "0",
        name: str = "Acme Inc.",
    ) -> Customer:
        # a `transaction=True` test flushes the ISO currencies of the data migration
        ensure_currencies()
        return CustomerFactory(
            external_id=external_id,
            name=name,
            email=f"billing@{external_id}.test",
            currency=currency,
            tax_rate=tax_rate,
        )

    return make


@pytest.fixture
def customer(make_customer) -> Customer:
    return make_customer("acme", tax_rate="19")


def line(amount: str, description: str = "Line", **kwargs) -> LineSpec:
    return LineSpec(
        kind=kwargs.pop("kind", InvoiceLine.Kind.ADJUSTMENT),
        description=description,
        amount_exact=Decimal(amount),
        **kwargs,
    )


@pytest.fixture
def make_draft(db) -> Callable[..., Invoice]:
    """make_draft(customer, ["20.645", ...]) → a one-off draft with those exact line
    amounts, in the customer's currency."""

    def make(
        customer: Customer,
        amounts: Sequence[str | LineSpec] = ("100",),
        *,
        now: datetime | None = None,
    ) -> Invoice:
        specs = [
            a if isinstance(a, LineSpec) else line(a, f"Line {i + 1}")
            for i, a in enumerate(amounts)
        ]
        invoice, created = invoice_draft_create(
            customer=customer,
            currency=customer.currency_id,
            kind=Invoice.Kind.ONE_OFF,
            lines=specs,
            now=now,
        )
        assert created
        return invoice

    return make
