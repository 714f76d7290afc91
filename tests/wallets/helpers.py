"""Helpers shared by the ledger tests: balances read straight from the rows, system account
balances from the entries, and table counts to prove that a refused call wrote nothing."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps

from wallets.currencies import currencies_install
from wallets.models import (
    Account,
    Grant,
    Hold,
    HoldAllocation,
    IdempotencyRecord,
    LedgerEntry,
    LedgerTransaction,
)
from wallets.selectors import system_balances
from wallets.services import grant_create

D = Decimal
ZERO = Decimal(0)


def ensure_currencies() -> None:
    currencies_install(apps)


def balance(wallet_id: int, asset: str = "USD") -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(posted, held, debt, available) of a wallet account; zeros when it has none."""
    account = Account.objects.filter(wallet_id=wallet_id, asset_id=asset).first()
    if account is None:
        return ZERO, ZERO, ZERO, ZERO
    return account.posted, account.held, account.debt, account.posted - account.held


def remaining(grant_id: str) -> Decimal:
    return Grant.objects.get(pk=grant_id).remaining


def grant_state(grant_id: str) -> tuple[str, Decimal, Decimal]:
    grant = Grant.objects.get(pk=grant_id)
    return grant.status, grant.remaining, grant.held


def system_balance(code: str, asset: str = "USD") -> Decimal:
    return system_balances().get((code, asset), ZERO)


def add_grant(wallet_id: int, amount: str, *, asset: str = "USD", purpose: str = "paid", **kw):
    return grant_create(wallet_id=wallet_id, asset=asset, amount=amount, purpose=purpose, **kw)


def row_counts() -> dict[str, int]:
    """Rows of every table a ledger write touches (to prove a refused call wrote nothing)."""
    return {
        model.__name__: model.objects.count()
        for model in (
            Account,
            Grant,
            Hold,
            HoldAllocation,
            IdempotencyRecord,
            LedgerEntry,
            LedgerTransaction,
        )
    }


def fundings(result) -> list[tuple[str | None, Decimal]]:
    """A DrawResult's funding as (grant id, amount) pairs, in the order drawn."""
    return [(f.grant_id, f.amount) for f in result.funding]
