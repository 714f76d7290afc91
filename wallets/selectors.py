"""Reads of the wallets app: balances, grants, the ledger, and the reconciliation that checks
invariants 1–4 of docs/quality.md over the whole ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet

from wallets.models import Account, Grant, LedgerTransaction


@dataclass(frozen=True)
class Balance:
    asset: str
    posted: Decimal
    held: Decimal
    debt: Decimal

    @property
    def available(self) -> Decimal:
        return self.posted - self.held


def wallet_balances(*, wallet_id: int) -> list[Balance]:
    rows = Account.objects.filter(wallet_id=wallet_id).order_by("asset_id")
    return [Balance(a.asset_id, a.posted, a.held, a.debt) for a in rows]


def wallet_grants(*, wallet_id: int, active_only: bool = False) -> QuerySet[Grant]:
    query = Grant.objects.filter(wallet_id=wallet_id)
    if active_only:
        query = query.filter(status=Grant.Status.ACTIVE)
    return query.order_by("asset_id", "priority", "expires_at", "created_at")


def wallet_transactions(*, wallet_id: int) -> QuerySet[LedgerTransaction]:
    """The wallet's ledger, newest first, with entries prefetched: its own transactions and
    transfers out of it (which belong to the receiving wallet)."""
    return (
        LedgerTransaction.objects.filter(
            Q(wallet_id=wallet_id) | Q(counterparty_wallet_id=wallet_id)
        )
        .prefetch_related("entries")
        .order_by("-id")
    )


def system_balances() -> dict[tuple[str, str], Decimal]:
    """Balances of system accounts, derived from entries (they keep no balance row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.system_code, e.asset_id, SUM(e.amount)
            FROM wallets_ledgerentry e JOIN wallets_account a ON a.id = e.account_id
            WHERE a.system_code IS NOT NULL
            GROUP BY a.system_code, e.asset_id ORDER BY 1, 2
            """
        )
        return {(code, asset): total for code, asset, total in cursor.fetchall()}


@dataclass(frozen=True)
class Drift:
    invariant: int
    where: str
    detail: str

    def __str__(self) -> str:
        return f"invariant {self.invariant}: {self.where}: {self.detail}"


# Each check is one query over the whole ledger; each returned row is a drift.
CHECKS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "transaction {0} asset {1}",
        """
        SELECT transaction_id, asset_id, SUM(amount) FROM wallets_ledgerentry
        GROUP BY transaction_id, asset_id HAVING SUM(amount) <> 0
        """,
    ),
    (
        1,
        "whole ledger asset {0}",
        """
        SELECT asset_id, SUM(amount), NULL FROM wallets_ledgerentry
        GROUP BY asset_id HAVING SUM(amount) <> 0
        """,
    ),
    (
        # an entry's asset is its account's (the entries keep no foreign key to the asset
        # table: ADR 0007); the account's own asset key is checked by PostgreSQL
        1,
        "entry {0} (account {1}) asset",
        """
        SELECT e.id, e.account_id, e.asset_id, a.asset_id FROM wallets_ledgerentry e
        JOIN wallets_account a ON a.id = e.account_id WHERE e.asset_id <> a.asset_id
        """,
    ),
    (
        2,
        "account {0} (wallet {1}) posted",
        """
        SELECT a.id, a.wallet_id, a.posted, COALESCE(s.total, 0) FROM wallets_account a
        LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM wallets_ledgerentry
                   GROUP BY account_id) s ON s.account_id = a.id
        WHERE a.wallet_id IS NOT NULL AND a.posted <> COALESCE(s.total, 0)
        """,
    ),
    (
        2,
        "account {0} (wallet {1}) held",
        """
        SELECT a.id, a.wallet_id, a.held, COALESCE(h.total, 0) FROM wallets_account a
        LEFT JOIN (SELECT hl.wallet_id, al.asset_id, SUM(al.amount) AS total
                   FROM wallets_holdallocation al JOIN wallets_hold hl ON hl.id = al.hold_id
                   WHERE hl.status = 'pending' GROUP BY hl.wallet_id, al.asset_id) h
               ON h.wallet_id = a.wallet_id AND h.asset_id = a.asset_id
        WHERE a.wallet_id IS NOT NULL AND a.held <> COALESCE(h.total, 0)
        """,
    ),
    (
        2,
        "account {0} (wallet {1}) grants minus debt",
        """
        SELECT a.id, a.wallet_id, a.posted, COALESCE(g.total, 0) - a.debt FROM wallets_account a
        LEFT JOIN (SELECT wallet_id, asset_id, SUM(remaining) AS total FROM wallets_grant
                   GROUP BY wallet_id, asset_id) g
               ON g.wallet_id = a.wallet_id AND g.asset_id = a.asset_id
        WHERE a.wallet_id IS NOT NULL AND a.posted <> COALESCE(g.total, 0) - a.debt
        """,
    ),
    (
        2,
        "account {0} (wallet {1}) debt",
        """
        SELECT a.id, a.wallet_id, a.debt, -COALESCE(SUM(e.amount), 0) FROM wallets_account a
        LEFT JOIN wallets_ledgerentry e ON e.account_id = a.id AND e.grant_id IS NULL
        WHERE a.wallet_id IS NOT NULL
        GROUP BY a.id, a.wallet_id, a.debt HAVING a.debt <> -COALESCE(SUM(e.amount), 0)
        """,
    ),
    (
        3,
        "grant {0} remaining",
        """
        SELECT g.id, g.remaining, COALESCE(SUM(e.amount), 0), NULL FROM wallets_grant g
        LEFT JOIN wallets_ledgerentry e
               ON e.grant_id = g.id AND e.account_id IN (
                   SELECT id FROM wallets_account WHERE wallet_id = g.wallet_id)
        GROUP BY g.id, g.remaining HAVING g.remaining <> COALESCE(SUM(e.amount), 0)
        """,
    ),
    (
        3,
        "grant {0} held",
        """
        SELECT g.id, g.held, COALESCE(h.total, 0), NULL FROM wallets_grant g
        LEFT JOIN (SELECT al.grant_id, SUM(al.amount) AS total
                   FROM wallets_holdallocation al JOIN wallets_hold hl ON hl.id = al.hold_id
                   WHERE hl.status = 'pending' GROUP BY al.grant_id) h ON h.grant_id = g.id
        WHERE g.held <> COALESCE(h.total, 0)
        """,
    ),
    (
        3,
        "grant {0} out of range",
        """
        SELECT id, remaining, amount, held FROM wallets_grant
        WHERE remaining < 0 OR remaining > amount OR held < 0 OR held > remaining
        """,
    ),
)

TRIGGER_CHECK = """
SELECT COUNT(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relname = 'wallets_ledgerentry' AND t.tgname = 'wallets_ledgerentry_immutable'
  AND t.tgenabled <> 'D'
"""


def ledger_reconcile() -> list[Drift]:
    """Every drift from invariants 1–4 over the whole ledger; empty when it is exact."""
    drifts: list[Drift] = []
    with connection.cursor() as cursor:
        for invariant, where, sql in CHECKS:
            cursor.execute(sql)
            for row in cursor.fetchall():
                a, b, c, *rest = row
                d = rest[0] if rest else None
                place = where.format(a, b)
                if where.startswith("entry"):
                    detail = f"asset {c}, its account's {d}"
                elif invariant == 1 and "transaction" in where:
                    detail = f"entries sum to {c}, not 0"
                elif invariant == 1:
                    detail = f"all entries sum to {b}, not 0"
                    place = where.format(a)
                elif "out of range" in where:
                    detail = f"remaining {b}, amount {c}, held {d}"
                    place = where.format(a)
                elif invariant == 3:
                    detail = f"stored {b}, ledger says {c}"
                    place = where.format(a)
                else:
                    detail = f"stored {c}, ledger says {d}"
                drifts.append(Drift(invariant, place, detail))
        cursor.execute(TRIGGER_CHECK)
        if cursor.fetchone()[0] != 1:
            drifts.append(
                Drift(4, "table wallets_ledgerentry", "the immutability trigger is missing or off")
            )
    return drifts
