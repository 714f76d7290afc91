"""Monthly statements (docs/invoices.md): per asset of a customer's wallet, the opening balance,
every movement of the month by what caused it, and the closing balance; plus the month's
invoices. Built from the ledger alone, in one SQL statement (one snapshot), so a statement
always reconciles: opening + movements = closing = the sum of the wallet's entries up to the
month's end.

Months are calendar months in UTC: ``[first day 00:00Z, first day of the next month 00:00Z)``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from billing.models import Customer, Invoice
from core.errors import ValidationFailed
from core.text import fixed_text, number_text
from wallets.models import Asset, LedgerTransaction

ZERO = Decimal(0)

# Movement categories, in the order a statement shows them.
GRANTS = "grants"
USAGE = "usage"
EXPIRATIONS = "expirations"
REVERSALS = "reversals"
VOIDS = "voids"
ADJUSTMENTS = "adjustments"
TRANSFERS = "transfers"
OTHER = "other"

CATEGORY_LABELS = {
    GRANTS: "Grants in",
    USAGE: "Usage out",
    EXPIRATIONS: "Expirations",
    REVERSALS: "Reversals and refunds",
    VOIDS: "Voided grants",
    ADJUSTMENTS: "Adjustments",
    TRANSFERS: "Transfers to other wallets",
    OTHER: "Other movements",
}

_BY_KIND = {
    LedgerTransaction.Kind.GRANT: GRANTS,
    LedgerTransaction.Kind.DRAW: USAGE,
    LedgerTransaction.Kind.CAPTURE: USAGE,
    LedgerTransaction.Kind.REFUND: REVERSALS,
    LedgerTransaction.Kind.EXPIRE: EXPIRATIONS,
    LedgerTransaction.Kind.VOID: VOIDS,
    LedgerTransaction.Kind.ADJUST: ADJUSTMENTS,
}

# One statement, one snapshot: the balances before the month and at its end, and the month's
# movements grouped by transaction kind and meter. ``own`` tells a grant into this wallet
# from a transfer out of it (a transfer is a grant transaction of the receiving wallet).
_LEDGER_SQL = """
WITH e AS (
    SELECT e.asset_id, e.amount, e.created_at, t.kind,
           t.wallet_id = %(wallet)s AS own,
           COALESCE(t.metadata ->> 'meter', '') AS meter
    FROM wallets_ledgerentry e
    JOIN wallets_account a ON a.id = e.account_id
    JOIN wallets_ledgertransaction t ON t.id = e.transaction_id
    WHERE a.wallet_id = %(wallet)s AND e.created_at < %(end)s
)
SELECT asset_id, 'opening', NULL::boolean, NULL::text, SUM(amount) FROM e
 WHERE created_at < %(start)s GROUP BY asset_id
UNION ALL
SELECT asset_id, 'closing', NULL::boolean, NULL::text, SUM(amount) FROM e GROUP BY asset_id
UNION ALL
SELECT asset_id, kind, own, meter, SUM(amount) FROM e
 WHERE created_at >= %(start)s GROUP BY asset_id, kind, own, meter
"""


@dataclass(frozen=True)
class MeterUsage:
    meter: str  # "" when the charge named no meter
    amount: Decimal  # negative: value out of the wallet (a reversal shows apart)


@dataclass
class AssetStatement:
    """One asset's month. Movements are signed as in the ledger: into the wallet positive,
    out of it negative."""

    asset: str
    name: str
    decimals: int
    opening: Decimal = ZERO
    closing: Decimal = ZERO
    movements: dict[str, Decimal] = field(default_factory=dict)
    usage: list[MeterUsage] = field(default_factory=list)

    def movement(self, category: str) -> Decimal:
        return self.movements.get(category, ZERO)

    @property
    def total_movements(self) -> Decimal:
        return sum(self.movements.values(), ZERO)

    @property
    def reconciles(self) -> bool:
        """opening + movements == closing (closing is summed from the ledger separately)."""
        return self.opening + self.total_movements == self.closing

    def rows(self) -> list[tuple[str, str, str, Decimal]]:
        """``(category, label, meter, amount)`` in statement order: usage by meter, the other
        categories only when they moved."""
        out: list[tuple[str, str, str, Decimal]] = []
        for category, label in CATEGORY_LABELS.items():
            if category == USAGE:
                for use in self.usage:
                    out.append((USAGE, label, use.meter, use.amount))
            elif category in self.movements:
                out.append((category, label, "", self.movements[category]))
        return out


@dataclass
class Statement:
    customer: Customer
    year: int
    month: int
    start: datetime
    end: datetime
    assets: list[AssetStatement]
    invoices: list[Invoice]
    generated_at: datetime

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def reconciles(self) -> bool:
        return all(asset.reconciles for asset in self.assets)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 9998:
        raise ValidationFailed("Invalid year.", errors={"year": ["A year from 2000 to 9998."]})
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise ValidationFailed("Invalid month.", errors={"month": ["A month from 1 to 12."]})
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def statement_for(*, customer: Customer, year: int, month: int) -> Statement:
    """The customer's statement of one calendar month (UTC). Assets appear when they had a
    balance before the month or moved in it. The invoices are those issued in the month that
    left draft (a draft is not yet a document the customer receives)."""
    start, end = month_bounds(year, month)
    with connection.cursor() as cursor:
        cursor.execute(_LEDGER_SQL, {"wallet": customer.wallet_id, "start": start, "end": end})
        rows = cursor.fetchall()
    codes = sorted({row[0] for row in rows})
    assets = {a.code: a for a in Asset.objects.filter(code__in=codes)}
    by_asset: dict[str, AssetStatement] = {
        code: AssetStatement(asset=code, name=assets[code].name, decimals=assets[code].decimals)
        for code in codes
    }
    usage: dict[str, dict[str, Decimal]] = {code: {} for code in codes}
    for code, kind, own, meter, total in rows:
        entry = by_asset[code]
        if kind == "opening":
            entry.opening = total
        elif kind == "closing":
            entry.closing = total
        else:
            category = _BY_KIND.get(kind, OTHER)
            if category == GRANTS and not own:
                category = TRANSFERS
            entry.movements[category] = entry.movement(category) + total
            if category == USAGE:
                usage[code][meter] = usage[code].get(meter, ZERO) + total
    for code, entry in by_asset.items():
        # named meters alphabetically, then charges that named none
        entry.usage = [
            MeterUsage(meter, amount)
            for meter, amount in sorted(usage[code].items(), key=lambda m: (m[0] == "", m[0]))
        ]
    kept = [
        entry for entry in by_asset.values() if entry.opening or entry.closing or entry.movements
    ]
    invoices = list(
        Invoice.objects.filter(customer=customer, issued_at__gte=start, issued_at__lt=end)
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("currency")
        .order_by("issued_at", "id")
    )
    return Statement(
        customer=customer,
        year=year,
        month=month,
        start=start,
        end=end,
        assets=kept,
        invoices=invoices,
        generated_at=timezone.now(),
    )


CSV_HEADER = ["kind", "asset", "item", "meter", "status", "date", "amount"]


def _text_cell(value: str) -> str:
    """Free text (a meter code) that a spreadsheet would read as a formula is quoted."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def statement_csv(statement: Statement) -> str:
    """The statement as CSV: one row per opening balance, movement (usage by meter), closing
    balance of each asset, then one row per invoice. Amounts are exact decimal text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    first = statement.start.date().isoformat()
    last = (statement.end - timedelta(days=1)).date().isoformat()
    for asset in statement.assets:
        d = asset.decimals
        opening = number_text(asset.opening, d, grouping=False)
        writer.writerow(["opening", asset.asset, "Opening balance", "", "", first, opening])
        for category, label, meter, amount in asset.rows():
            writer.writerow(
                [
                    category,
                    asset.asset,
                    label,
                    _text_cell(meter),
                    "",
                    "",
                    number_text(amount, d, grouping=False),
                ]
            )
        closing = number_text(asset.closing, d, grouping=False)
        writer.writerow(["closing", asset.asset, "Closing balance", "", "", last, closing])
    for invoice in statement.invoices:
        writer.writerow(
            [
                "invoice",
                invoice.currency_id,
                invoice.number or "",
                "",
                invoice.status,
                invoice.issued_at.date().isoformat() if invoice.issued_at else "",
                fixed_text(invoice.total, invoice.currency.decimals),
            ]
        )
    return out.getvalue()
