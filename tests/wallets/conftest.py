from __future__ import annotations

import pytest

from tests.factories import AssetFactory, WalletFactory
from wallets.selectors import ledger_reconcile


@pytest.fixture(autouse=True)
def reconciled_ledger(request):
    """After every ledger test, invariants 1–4 hold over the whole ledger."""
    yield
    if (
        "db" in request.fixturenames
        or "transactional_db" in request.fixturenames
        or any(m.name == "django_db" for m in request.node.iter_markers())
    ):
        drifts = ledger_reconcile()
        assert drifts == [], "\n".join(map(str, drifts))


@pytest.fixture
def wallet(db):
    return WalletFactory(owner="test:wallet")


@pytest.fixture
def make_wallet(db):
    """make_wallet() → a new wallet, owners numbered from 1 in each test."""
    counter = iter(range(1, 10_000))

    def make(owner: str | None = None):
        return WalletFactory(owner=owner or f"test:wallet-{next(counter)}")

    return make


# --- added for the ledger test suite -------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def currencies_present(django_db_setup, django_db_blocker):
    """ISO currencies come from a data migration (and a post_migrate handler after a flush); a
    test database kept by `--reuse-db` from before that handler may lack them. Put them back."""
    from tests.wallets.helpers import ensure_currencies

    with django_db_blocker.unblock():
        ensure_currencies()


@pytest.fixture
def credits(db):
    """docs/charging.md example D: custom asset `credits`, 0 decimals, 1 credit = 0.01 USD."""
    return AssetFactory(credits=True)
