from __future__ import annotations

import pytest

from wallets.selectors import ledger_reconcile
from wallets.services import wallet_create


@pytest.fixture(autouse=True)
def reconciled_ledger(request):
    """After every ledger test, invariants 1–4 hold over the whole ledger."""
    yield
    if "db" in request.fixturenames or "transactional_db" in request.fixturenames or any(
        m.name == "django_db" for m in request.node.iter_markers()
    ):
        drifts = ledger_reconcile()
        assert drifts == [], "\n".join(map(str, drifts))


@pytest.fixture
def wallet(db):
    return wallet_create(owner="test:wallet")


@pytest.fixture
def make_wallet(db):
    counter = iter(range(1, 10_000))

    def make(owner: str | None = None):
        return wallet_create(owner=owner or f"test:wallet-{next(counter)}")

    return make
