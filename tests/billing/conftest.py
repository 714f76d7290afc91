from __future__ import annotations

import pytest
import time_machine

from billing.metering import database
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


# the metering tests' "now": in January 2026, the first period of their subscriptions
METERING_NOW = "2026-01-10T12:00:00Z"


@pytest.fixture
def clock():
    """The clock stopped at ``METERING_NOW`` (``shift`` and ``move_to`` move it)."""
    with time_machine.travel(METERING_NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def customer(db):
    return customer_create(external_id="acme", name="Acme Inc.", currency="USD")


@pytest.fixture
def in_database(monkeypatch) -> list[str]:
    """The ids of the events the charge function charged, captures included (an answer
    rather than None; from every thread), in the order it answered."""
    charged: list[str] = []
    original = database.event_charge

    def counting(ctx, data, period, price, now, hold=None):
        outcome = original(ctx, data, period, price, now, hold=hold)
        if outcome is not None:
            charged.append(data.id)
        return outcome

    monkeypatch.setattr(database, "event_charge", counting)
    return charged


@pytest.fixture
def reserved_in_database(monkeypatch) -> list[str]:
    """The ids of the holds the reservation function reserved (from every thread)."""
    reserved: list[str] = []
    original = database.hold_reserve

    def counting(ctx, data, *args):
        outcome = original(ctx, data, *args)
        if outcome is not None:
            reserved.append(data.id)
        return outcome

    monkeypatch.setattr(database, "hold_reserve", counting)
    return reserved
