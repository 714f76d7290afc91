from __future__ import annotations

import pytest

from billing.services.customers import customer_create
from wallets.selectors import ledger_reconcile


@pytest.fixture(autouse=True)
def reconciled_ledger(request):
    """After every billing test that touched the database, the ledger reconciles exactly."""
    yield
    if any(m.name == "django_db" for m in request.node.iter_markers()) or {
        "db",
        "transactional_db",
    } & set(request.fixturenames):
        drifts = ledger_reconcile()
        assert drifts == [], "\n".join(map(str, drifts))


@pytest.fixture
def customer(db):
    return customer_create(external_id="acme", name="Acme Inc.", currency="USD")
