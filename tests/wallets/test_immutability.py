"""Invariant 4: posted ledger entries are never updated or deleted — enforced by a trigger in
the database, whatever path the write takes (ORM instance, queryset, raw SQL)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.wallets.helpers import add_grant
from wallets.models import Account, Grant, LedgerEntry
from wallets.selectors import ledger_reconcile
from wallets.services import wallet_draw

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(wallet) -> LedgerEntry:
    add_grant(wallet.pk, "10", grant_id="g")
    wallet_draw(wallet_id=wallet.pk, asset="USD", amount="4", idempotency_key="d")
    return LedgerEntry.objects.get(account__wallet=wallet, amount=D("-4"))


def snapshot() -> list[tuple]:
    return list(
        LedgerEntry.objects.order_by("id").values_list("id", "account_id", "grant_id", "amount")
    )


def refused(action) -> DatabaseError:
    """Run ``action`` in its own transaction; it must fail in the database."""
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        action()
    assert "ledger entries are immutable" in str(error.value)
    return error.value


def raw(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def test_orm_update_of_an_entry_is_refused(entry):
    before = snapshot()

    def save_instance():
        entry.amount = D("-5")
        entry.save()

    refused(save_instance)
    refused(lambda: LedgerEntry.objects.filter(pk=entry.pk).update(amount=D("-5")))
    refused(lambda: LedgerEntry.objects.filter(pk=entry.pk).update(amount=entry.amount))
    refused(lambda: LedgerEntry.objects.update(grant=None))
    assert snapshot() == before


def test_orm_delete_of_an_entry_is_refused(entry):
    before = snapshot()
    fresh = LedgerEntry.objects.get(pk=entry.pk)
    refused(fresh.delete)
    refused(lambda: LedgerEntry.objects.filter(pk=entry.pk).delete())
    refused(lambda: LedgerEntry.objects.all().delete())
    assert snapshot() == before


def test_raw_sql_update_and_delete_of_an_entry_are_refused(entry):
    before = snapshot()
    refused(lambda: raw("UPDATE wallets_ledgerentry SET amount = 0.01 WHERE id = %s", [entry.pk]))
    refused(lambda: raw("UPDATE wallets_ledgerentry SET created_at = now()", []))
    refused(lambda: raw("DELETE FROM wallets_ledgerentry WHERE id = %s", [entry.pk]))
    refused(lambda: raw("DELETE FROM wallets_ledgerentry", []))
    assert snapshot() == before


def test_reconcile_names_a_planted_drift_until_the_row_is_restored(entry, wallet):
    account = Account.objects.get(wallet=wallet, asset_id="USD")
    raw("UPDATE wallets_account SET posted = posted + 1 WHERE id = %s", [account.pk])
    raw("UPDATE wallets_grant SET remaining = remaining - 2 WHERE id = 'g'")
    drifts = ledger_reconcile()
    assert sorted((d.invariant, d.where, d.detail) for d in drifts) == [
        (
            2,
            f"account {account.pk} (wallet {wallet.pk}) grants minus debt",
            "stored 7.000000000000, ledger says 4.000000000000",
        ),
        (
            2,
            f"account {account.pk} (wallet {wallet.pk}) posted",
            "stored 7.000000000000, ledger says 6.000000000000",
        ),
        (3, "grant g remaining", "stored 4.000000000000, ledger says 6.000000000000"),
    ]
    # restore the rows: the ledger is exact again (and the autouse check passes)
    raw("UPDATE wallets_account SET posted = posted - 1 WHERE id = %s", [account.pk])
    raw("UPDATE wallets_grant SET remaining = remaining + 2 WHERE id = 'g'")
    assert ledger_reconcile() == []
    assert Grant.objects.get(pk="g").remaining == D("6")
