from __future__ import annotations

import pytest

from wallets.selectors import ledger_reconcile
from wallets.services import wallet_create


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
    return wallet_create(owner="test:wallet")


@pytest.fixture
def make_wallet(db):
    counter = iter(range(1, 10_000))

    def make(owner: str | None = None):
        return wallet_create(owner=owner or f"test:wallet-{next(counter)}")

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
    from tests.wallets.helpers import credits_asset

    return credits_asset()
