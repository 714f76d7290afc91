"""`ledger_reconcile` finds every kind of drift from invariants 1–4 and names the transaction,
account or grant. Each drift is planted with raw SQL inside a transaction that is then rolled
back, so the ledger is exact again for the autouse reconcile fixture."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from tests.wallets.helpers import add_grant
from wallets.models import Account, Asset, Grant, LedgerEntry, LedgerTransaction
from wallets.selectors import Drift, ledger_reconcile
from wallets.services import (
    HoldLeg,
    hold_capture,
    hold_create,
    hold_void,
    wallet_draw,
    wallet_refund,
    wallet_transfer,
)

D = Decimal
pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


@contextmanager
def planted() -> Iterator[None]:
    """Run the block in a transaction and roll it back afterwards."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def places(drifts: list[Drift]) -> list[tuple[int, str]]:
    return sorted((d.invariant, d.where) for d in drifts)


@pytest.fixture
def ledger(make_wallet):
    """A small but complete history: grants, draws, a refund, a pending and a captured hold,
    a debt and a transfer."""
    a, b = make_wallet().pk, make_wallet().pk
    g = add_grant(a, "10", priority=1, grant_id="g-a")
    add_grant(a, "5", priority=2, grant_id="g-b")
    first = wallet_draw(wallet_id=a, asset="USD", amount="3", idempotency_key="d1")
    wallet_draw(wallet_id=a, asset="USD", amount="2", idempotency_key="d2")
    wallet_refund(transaction_id=first.transaction_id, idempotency_key="r1")
    hold_create(wallet_id=a, hold_id="h-captured", legs=[HoldLeg("USD", D("1"))])
    hold_capture(hold_id="h-captured", charges=[HoldLeg("USD", D("1"))])
    hold_create(wallet_id=a, hold_id="h-pending", legs=[HoldLeg("USD", D("2"))])
    wallet_transfer(from_wallet_id=a, to_wallet_id=b, asset="USD", amount="4", idempotency_key="t")
    hold_create(wallet_id=b, hold_id="h-debt", legs=[HoldLeg("USD", D("4"))])
    hold_capture(hold_id="h-debt", charges=[HoldLeg("USD", D("6"))])
    assert ledger_reconcile() == []
    account_a = Account.objects.get(wallet_id=a, asset_id="USD")
    account_b = Account.objects.get(wallet_id=b, asset_id="USD")
    assert (account_a.posted, account_a.held, account_a.debt) == (D("8"), D("2"), D("0"))
    assert (account_b.posted, account_b.held, account_b.debt) == (D("-2"), D("0"), D("2"))
    return {"a": account_a, "b": account_b, "grant": g}


def test_clean_ledger_has_no_drift(ledger):
    assert ledger_reconcile() == []
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert "no drift" in out.getvalue()


def test_unbalanced_transaction(ledger):
    revenue = Account.objects.get(system_code="revenue", asset_id="USD")
    with planted():
        txn = LedgerTransaction.objects.create(kind="draw", wallet_id=None)
        LedgerEntry.objects.create(transaction=txn, account=revenue, asset_id="USD", amount=D("1"))
        drifts = ledger_reconcile()
        assert places(drifts) == [
            (1, f"transaction {txn.pk} asset USD"),
            (1, "whole ledger asset USD"),
        ]
        assert sorted(d.detail for d in drifts) == [
            "all entries sum to 1.000000000000, not 0",
            "entries sum to 1.000000000000, not 0",
        ]
    assert ledger_reconcile() == []


def test_an_entry_in_another_asset_than_its_account(ledger):
    """The entries' asset column has no foreign key (ADR 0007): reconcile holds it to the
    account's asset, which is stricter than the key was."""
    a = ledger["a"]
    revenue = Account.objects.get(system_code="revenue", asset_id="USD")
    with planted():
        Asset.objects.get_or_create(
            code="EUR", defaults={"name": "Euro", "kind": "currency", "decimals": 2}
        )
        txn = LedgerTransaction.objects.create(kind="draw", wallet_id=a.wallet_id)
        wrong = LedgerEntry.objects.create(
            transaction=txn, account=a, asset_id="EUR", amount=D("-1")
        )
        also = LedgerEntry.objects.create(
            transaction=txn, account=revenue, asset_id="EUR", amount=D("1")
        )
        drifts = sorted(d.where for d in ledger_reconcile() if d.invariant == 1)
        assert drifts == [  # the transaction balances in EUR: only its entries are named
            f"entry {wrong.pk} (account {a.pk}) asset",
            f"entry {also.pk} (account {revenue.pk}) asset",
        ]
        assert {d.detail for d in ledger_reconcile() if d.invariant == 1} == {
            "asset EUR, its account's USD"
        }
    assert ledger_reconcile() == []


def test_posted_drift_names_the_account(ledger):
    a = ledger["a"]
    with planted():
        sql("UPDATE wallets_account SET posted = posted + 0.01 WHERE id = %s", [a.pk])
        drifts = ledger_reconcile()
        assert places(drifts) == [
            (2, f"account {a.pk} (wallet {a.wallet_id}) grants minus debt"),
            (2, f"account {a.pk} (wallet {a.wallet_id}) posted"),
        ]
        posted = next(d for d in drifts if d.where.endswith("posted"))
        assert posted.detail == "stored 8.010000000000, ledger says 8.000000000000"
    assert ledger_reconcile() == []


def test_account_held_drift(ledger):
    a = ledger["a"]
    with planted():
        sql("UPDATE wallets_account SET held = 0 WHERE id = %s", [a.pk])
        drifts = ledger_reconcile()
        assert places(drifts) == [(2, f"account {a.pk} (wallet {a.wallet_id}) held")]
        assert drifts[0].detail == "stored 0E-12, ledger says 2.000000000000"


def test_debt_drift(ledger):
    b = ledger["b"]
    with planted():
        sql("UPDATE wallets_account SET debt = 0 WHERE id = %s", [b.pk])
        assert places(ledger_reconcile()) == [
            (2, f"account {b.pk} (wallet {b.wallet_id}) debt"),
            (2, f"account {b.pk} (wallet {b.wallet_id}) grants minus debt"),
        ]


def test_grant_remaining_drift_names_the_grant(ledger):
    a = ledger["a"]
    with planted():
        sql("UPDATE wallets_grant SET remaining = remaining - 1 WHERE id = 'g-b'")
        drifts = ledger_reconcile()
        assert places(drifts) == [
            (2, f"account {a.pk} (wallet {a.wallet_id}) grants minus debt"),
            (3, "grant g-b remaining"),
        ]
        grant_drift = next(d for d in drifts if d.invariant == 3)
        assert grant_drift.detail == "stored 4.000000000000, ledger says 5.000000000000"


def test_grant_held_drift_with_a_pending_hold(ledger):
    held_grant = Grant.objects.get(held__gt=0)
    with planted():
        sql("UPDATE wallets_grant SET held = held + 1 WHERE id = %s", [held_grant.pk])
        assert places(ledger_reconcile()) == [(3, f"grant {held_grant.pk} held")]


def test_grant_held_drift_on_a_grant_never_held(ledger):
    with planted():
        sql("UPDATE wallets_grant SET held = 1 WHERE id = 'g-b'")
        assert places(ledger_reconcile()) == [(3, "grant g-b held")]


def test_grant_held_drift_on_a_grant_whose_holds_all_resolved(make_wallet):
    """A grant whose every hold is captured or voided must still have held == 0 checked."""
    w = make_wallet().pk
    add_grant(w, "10", grant_id="g")
    hold_create(wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("3"))])
    hold_void(hold_id="h1")
    hold_create(wallet_id=w, hold_id="h2", legs=[HoldLeg("USD", D("3"))])
    hold_capture(hold_id="h2", charges=[HoldLeg("USD", D("1"))])
    assert ledger_reconcile() == []
    with planted():
        sql("UPDATE wallets_grant SET held = 2 WHERE id = 'g'")
        drifts = ledger_reconcile()
        assert places(drifts) == [(3, "grant g held")]
        assert drifts[0].detail == "stored 2.000000000000, ledger says 0"


def test_disabled_immutability_trigger_is_a_drift(ledger):
    with planted():
        sql("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred FK checks pending: ALTER may run
        sql("ALTER TABLE wallets_ledgerentry DISABLE TRIGGER wallets_ledgerentry_immutable")
        drifts = ledger_reconcile()
        assert [(d.invariant, d.where, d.detail) for d in drifts] == [
            (4, "table wallets_ledgerentry", "the immutability trigger is missing or off")
        ]


def test_reconcile_command_exits_1_and_names_the_drift(ledger):
    a = ledger["a"]
    err = StringIO()
    with planted():
        sql("UPDATE wallets_account SET posted = posted - 1 WHERE id = %s", [a.pk])
        with pytest.raises(CommandError) as failed:
            call_command("reconcile", stderr=err)
        assert failed.value.returncode == 1
    assert f"account {a.pk} (wallet {a.wallet_id}) posted" in err.getvalue()
