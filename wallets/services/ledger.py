"""Accounts, locks and postings: the lowest layer of the ledger.

Every grant and balance of a wallet in one asset is changed only while its wallet account row
is locked (``accounts_lock``), and locks are always taken in ascending account id, so two
transactions never deadlock. A posting writes a transaction and its entries (which must sum
to zero per asset) and moves the ``posted`` column of the wallet accounts it touches; system
accounts keep no balance row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from wallets.errors import NotFound, ValidationFailed
from wallets.models import Account, Asset, LedgerEntry, LedgerTransaction, Wallet


@dataclass(frozen=True)
class Leg:
    """One entry to post: ``amount`` into (positive) or out of (negative) ``account``."""

    account: Account
    amount: Decimal
    grant_id: str | None = None


def asset_get(code: str) -> Asset:
    try:
        return Asset.objects.get(code=code)
    except Asset.DoesNotExist:
        raise NotFound(f"Unknown asset '{code}'.", errors={"asset": ["Unknown asset."]}) from None


def wallet_get(wallet_id: int) -> Wallet:
    try:
        return Wallet.objects.get(pk=wallet_id)
    except Wallet.DoesNotExist:
        raise NotFound(f"Unknown wallet {wallet_id}.") from None


def wallet_create(*, owner: str) -> Wallet:
    owner = (owner or "").strip()
    if not owner or len(owner) > 255:
        raise ValidationFailed("A wallet needs an owner label of 1–255 characters.")
    wallet, _ = Wallet.objects.get_or_create(owner=owner)
    return wallet


def system_account(code: str, asset_code: str) -> Account:
    """The system account ``code`` in ``asset_code``, made on first use."""
    account = Account.objects.filter(system_code=code, asset_id=asset_code).first()
    if account is not None:
        return account
    Account.objects.bulk_create(
        [Account(system_code=code, asset_id=asset_code)], ignore_conflicts=True
    )
    return Account.objects.get(system_code=code, asset_id=asset_code)


def accounts_lock(wallet_id: int, asset_codes: Iterable[str]) -> dict[str, Account]:
    """Make the wallet's accounts in these assets if missing and lock them, in id order.
    Must run inside a transaction; the locks are held until it ends."""
    codes = sorted(set(asset_codes))

    def lock() -> dict[str, Account]:
        rows = (
            Account.objects.select_for_update()
            .filter(wallet_id=wallet_id, asset_id__in=codes)
            .order_by("id")
        )
        return {account.asset_id: account for account in rows}

    accounts = lock()
    if len(accounts) == len(codes):
        return accounts
    Account.objects.bulk_create(
        [Account(wallet_id=wallet_id, asset_id=code) for code in codes if code not in accounts],
        ignore_conflicts=True,
    )
    return lock()


def ledger_post(
    *,
    kind: str,
    legs: Sequence[Leg],
    wallet_id: int | None,
    reference: str = "",
    description: str = "",
    metadata: dict | None = None,
    reverses: LedgerTransaction | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction and move the posted balance of its wallet accounts."""
    legs = [leg for leg in legs if leg.amount != 0]
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for leg in legs:
        sums[leg.account.asset_id] += leg.amount
    unbalanced = {asset: total for asset, total in sums.items() if total != 0}
    if unbalanced:  # a programming error, never user input
        raise AssertionError(f"unbalanced transaction {kind}: {unbalanced}")
    now = timezone.now()
    txn = LedgerTransaction.objects.create(
        wallet_id=wallet_id,
        kind=kind,
        reference=reference[:255],
        description=description[:500],
        metadata=metadata or {},
        reverses=reverses,
        created_at=now,
    )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            transaction=txn,
            account_id=leg.account.pk,
            asset_id=leg.account.asset_id,
            grant_id=leg.grant_id,
            amount=leg.amount,
            created_at=now,
        )
        for leg in legs
    )
    # A wallet-account leg names the grant it moves; one without a grant moves the debt
    # (money owed beyond every grant): out of the wallet raises it, into the wallet lowers it.
    posted: dict[int, Decimal] = defaultdict(Decimal)
    debt: dict[int, Decimal] = defaultdict(Decimal)
    accounts: dict[int, Account] = {}
    for leg in legs:
        if leg.account.wallet_id is not None:
            posted[leg.account.pk] += leg.amount
            if leg.grant_id is None:
                debt[leg.account.pk] -= leg.amount
            accounts[leg.account.pk] = leg.account
    for account_id in sorted(accounts):
        changes = {}
        if posted[account_id]:
            changes["posted"] = F("posted") + posted[account_id]
        if debt[account_id]:
            changes["debt"] = F("debt") + debt[account_id]
        if changes:
            Account.objects.filter(pk=account_id).update(**changes)
            accounts[account_id].posted += posted[account_id]
            accounts[account_id].debt += debt[account_id]
    return txn


def in_transaction() -> bool:
    return transaction.get_connection().in_atomic_block
