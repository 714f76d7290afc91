"""The money core: assets, wallets, accounts, grants, the double-entry ledger, holds and
idempotency records.

`wallets` knows no customer and no plan: a wallet has an owner label, a grant's meter scope is a
list of meter codes. Balances of wallet accounts are kept on their rows (updated with conditional
UPDATEs); system accounts (revenue, expiry, ...) never keep a balance row, their balances are
derived from ledger entries so they never become a hot row shared by every customer.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from djmoney.models.fields import MoneyField

from core.text import plain

from .fields import AmountField

ASSET_CODE_RE = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def new_grant_id() -> str:
    return new_id("grt")


def new_hold_id() -> str:
    return new_id("hld")


class Asset(models.Model):
    """A unit a wallet can hold. ISO 4217 currencies are created by a migration; custom assets
    (credits, tokens, gpu_seconds, ...) by staff or the API."""

    class Kind(models.TextChoices):
        CURRENCY = "currency", "ISO currency"
        CUSTOM = "custom", "Custom unit"

    code = models.CharField(
        primary_key=True,
        max_length=32,
        validators=[RegexValidator(ASSET_CODE_RE, "Letters, digits and _; starts with a letter.")],
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOM)
    decimals = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(12)],
        help_text="Decimal places of the unit (USD 2, JPY 0, KWD 3). At most 12.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["kind", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decimals__gte=0) & Q(decimals__lte=12), name="asset_decimals_0_12"
            ),
            models.CheckConstraint(
                condition=Q(code__regex=ASSET_CODE_RE), name="asset_code_format"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_currency(self) -> bool:
        return self.kind == self.Kind.CURRENCY


class AssetRate(models.Model):
    """The money value of one unit of a custom asset in a currency (1 credit = 0.01 USD)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="rates")
    currency = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": Asset.Kind.CURRENCY},
    )
    rate = AmountField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["asset", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "currency"], name="assetrate_unique"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="assetrate_positive"),
        ]

    def __str__(self) -> str:
        return f"1 {self.asset_id} = {plain(self.rate)} {self.currency_id}"


# The Django plugin cannot type `wallet.grants`: Grant's manager is django-money's (Grant.objects).
class Wallet(models.Model):  # type: ignore[django-manager-missing]
    """Balances in any number of assets. The owner is a label (e.g. ``customer:acme``)."""

    owner = models.CharField(max_length=300, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["owner"]

    def __str__(self) -> str:
        return self.owner


class Account(models.Model):
    """One side of ledger entries: a wallet's holding of one asset, or a system account.

    Only wallet accounts keep ``posted`` and ``held`` up to date (invariant 2 of docs/quality.md
    ties them to the entries and the open holds); a system account's balance is the sum of its
    entries, computed when asked."""

    class System(models.TextChoices):
        REVENUE = "revenue", "Revenue"
        PROMOTIONAL = "promotional", "Promotional source"
        ALLOWANCE = "allowance", "Allowance source"
        EXPIRY = "expiry", "Expiry"
        RECEIVABLES = "receivables", "Receivables"
        ADJUSTMENTS = "adjustments", "Staff adjustments"

    wallet = models.ForeignKey(
        Wallet, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    system_code = models.CharField(max_length=32, choices=System.choices, null=True, blank=True)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    posted = AmountField(default=0)
    held = AmountField(default=0)
    debt = AmountField(
        default=0,
        help_text="Owed beyond every grant (a capture larger than the wallet could pay); "
        "posted = sum of grant remainders - debt.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(wallet__isnull=False) & Q(system_code__isnull=True))
                | (Q(wallet__isnull=True) & Q(system_code__isnull=False)),
                name="account_wallet_xor_system",
            ),
            models.UniqueConstraint(
                fields=["wallet", "asset"],
                condition=Q(wallet__isnull=False),
                name="account_unique_wallet_asset",
            ),
            models.UniqueConstraint(
                fields=["system_code", "asset"],
                condition=Q(system_code__isnull=False),
                name="account_unique_system_asset",
            ),
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_nonnegative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="account_debt_nonnegative"),
            models.CheckConstraint(
                condition=Q(wallet__isnull=False) | (Q(posted=0) & Q(held=0) & Q(debt=0)),
                name="account_system_keeps_no_balance",
            ),
        ]

    def __str__(self) -> str:
        owner = self.system_code if self.wallet_id is None else f"wallet {self.wallet_id}"
        return f"{owner} · {self.asset_id}"

    @property
    def available(self) -> Decimal:
        return self.posted - self.held


class Grant(models.Model):
    """An amount of one asset put into a wallet. ``remaining`` is exact at all times:
    ``amount`` minus everything drawn from it (invariant 3); ``held`` is the part of
    ``remaining`` reserved by open holds."""

    class Purpose(models.TextChoices):
        ALLOWANCE = "allowance", "Allowance"
        PROMOTIONAL = "promotional", "Promotional"
        PAID = "paid", "Paid"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        VOIDED = "voided", "Voided"
        EXPIRED = "expired", "Expired"

    # django-money swaps the default manager for a subclass at class creation, which the type
    # checker's Django plugin cannot follow; the queries are a plain manager's.
    objects: ClassVar[models.Manager[Grant]]

    id = models.CharField(primary_key=True, max_length=255, default=new_grant_id)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="grants")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    priority = models.IntegerField(default=10, help_text="Lower burns first.")
    amount = AmountField()
    remaining = AmountField()
    held = AmountField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    meters = ArrayField(
        models.CharField(max_length=64),
        null=True,
        blank=True,
        help_text="Meter codes this grant may pay for; empty means every meter.",
    )
    cost = MoneyField(
        max_digits=38, decimal_places=12, null=True, blank=True, default_currency=None
    )
    reference = models.CharField(max_length=255, blank=True, default="")
    source = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="What issued it (e.g. a subscription period's allowance); unique when set.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["wallet", "asset", "priority", "created_at"]
        indexes = [
            models.Index(
                fields=["wallet", "asset", "priority", "expires_at", "created_at"],
                condition=Q(status="active"),
                name="grant_burn_down",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(status="active"), name="grant_expiry_due"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="grant_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")),
                name="grant_remaining_in_range",
            ),
            models.CheckConstraint(
                condition=Q(held__gte=0) & Q(held__lte=F("remaining")),
                name="grant_held_in_range",
            ),
            models.UniqueConstraint(
                fields=["source"], condition=Q(source__isnull=False), name="grant_unique_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.purpose} {plain(self.remaining)} {self.asset_id})"

    @property
    def available(self) -> Decimal:
        return self.remaining - self.held


class LedgerTransaction(models.Model):
    """A set of entries that sums to zero per asset (invariant 1)."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        DRAW = "draw", "Draw (charge)"
        CAPTURE = "capture", "Hold capture"
        REFUND = "refund", "Refund"
        ADJUST = "adjust", "Adjustment"
        VOID = "void", "Grant void"
        EXPIRE = "expire", "Grant expiry"

    # Every charge inserts a transaction and its entries: no index here that another one
    # already covers (wallet by txn_wallet_recent, reverses by txn_reversed_once,
    # counterparty_wallet by txn_counterparty_recent — a lookup by a wallet is never NULL).
    wallet = models.ForeignKey(
        Wallet,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        db_index=False,
    )
    reference = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    counterparty_wallet = models.ForeignKey(
        Wallet,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The other wallet a transfer moved value from (the transaction belongs to "
        "the receiving wallet): it shows in both wallets' ledgers.",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["wallet", "-id"], name="txn_wallet_recent"),
            models.Index(
                fields=["counterparty_wallet", "-id"],
                condition=Q(counterparty_wallet__isnull=False),
                name="txn_counterparty_recent",
            ),
        ]
        constraints = [
            # a transaction is reversed at most once
            models.UniqueConstraint(
                fields=["reverses"], condition=Q(reverses__isnull=False), name="txn_reversed_once"
            )
        ]

    def __str__(self) -> str:
        return f"txn {self.pk} {self.kind}"


class LedgerEntry(models.Model):
    """One posting. Immutable in the database: a trigger refuses UPDATE and DELETE
    (invariant 4); corrections are new, reversing transactions."""

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    # entry_account covers the account; asset and grant keep plain indexes (Meta), without
    # the text-pattern twins Django adds for a key that is text (no LIKE ever runs on them).
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    grant = models.ForeignKey(
        Grant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
    )
    amount = AmountField(help_text="Positive into the account, negative out of it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["account", "id"], name="entry_account"),
            models.Index(fields=["asset"], name="entry_asset"),
            models.Index(fields=["grant"], name="entry_grant"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{plain(self.amount)} {self.asset_id} → account {self.account_id}"


class Hold(models.Model):
    """An authorization: reserves part of grants' remaining amounts until it is captured,
    voided or expires."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CAPTURED = "captured", "Captured"
        VOIDED = "voided", "Voided"
        EXPIRED = "expired", "Expired"

    id = models.CharField(primary_key=True, max_length=255, default=new_hold_id)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    capture_transaction = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(status="pending"), name="hold_expiry_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class HoldAllocation(models.Model):
    """The part of one grant that one hold reserves."""

    hold = models.ForeignKey(Hold, on_delete=models.CASCADE, related_name="allocations")
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="hold_allocations")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = AmountField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hold", "grant"], name="holdallocation_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="holdallocation_positive"),
        ]

    def __str__(self) -> str:
        return f"{plain(self.amount)} {self.asset_id} of {self.grant_id}"


class IdempotencyRecord(models.Model):
    """A request key stored in the same transaction as its effect, with a hash of the request:
    a replay returns ``response``; the same key with another hash is a conflict."""

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(default=200)
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"
