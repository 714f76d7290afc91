"""The application's tables: customers, subscriptions, usage events, spend limits, invoices,
API keys and worker heartbeats."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.text import plain
from plans.models import Meter, PlanVersion
from wallets.fields import AmountField
from wallets.models import Asset, LedgerTransaction, Wallet

INVOICE_AMOUNT = {"max_digits": 30, "decimal_places": 4}


class Customer(models.Model):
    external_id = models.CharField(max_length=255, unique=True, help_text="The integrator's id.")
    name = models.CharField(max_length=255)
    email = models.EmailField(blank=True, default="")
    currency = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": Asset.Kind.CURRENCY},
        help_text="Billing currency (ISO 4217).",
    )
    tax_rate = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Percent.",
    )
    metadata = models.JSONField(default=dict, blank=True)
    wallet = models.OneToOneField(Wallet, on_delete=models.PROTECT, related_name="customer")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0) & Q(tax_rate__lte=100), name="customer_tax_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class Subscription(models.Model):
    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        CANCELED = "canceled", "Canceled (ends at period end)"
        ENDED = "ended", "Ended"

    class Overage(models.TextChoices):
        WALLET = "wallet", "Prepaid from the wallet"
        INVOICE = "invoice", "Postpaid on the invoice"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    seats = models.PositiveIntegerField(default=1)
    overage = models.CharField(max_length=16, choices=Overage.choices, default=Overage.WALLET)
    started_at = models.DateTimeField()
    billing_anchor = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Periods are counted from here (the start, or the boundary where the "
        "interval last changed).",
    )
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    next_plan_version = models.ForeignKey(
        PlanVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Plan change scheduled for the period end.",
    )
    next_seats = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seat decrease scheduled for the period end."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["current_period_end"], name="subscription_period_end")]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=F("current_period_start")),
                name="subscription_period_ordered",
            ),
            models.CheckConstraint(
                condition=Q(current_period_start__gte=F("started_at")),
                name="subscription_period_after_start",
            ),
            # events find "the" subscription of a customer: at most one is live at a time
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["trialing", "active", "canceled"]),
                name="subscription_one_live_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer.external_id} on {self.plan_version}"

    @property
    def anchor(self):
        return self.billing_anchor or self.started_at


class UsageEvent(models.Model):
    """One usage event as received. ``event_id`` is the integrator's idempotency key. A
    declined event is kept (for the portal and the admin) but charges nothing."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVERSED = "reversed", "Reversed"

    # Every event inserts a row here, so every index costs each event: the event id is unique
    # by a constraint (no text-pattern twin), the customer is covered by event_customer_time,
    # and the ledger transactions (never deleted) are not indexed from here.
    event_id = models.CharField(max_length=255)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="events", db_constraint=False
    )
    quantity = AmountField()
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    decline_code = models.CharField(max_length=64, blank=True, default="")
    period_start = models.DateTimeField(null=True, blank=True)
    included = AmountField(default=0)
    billable = AmountField(default=0)
    amount = AmountField(default=0)
    asset = models.ForeignKey(
        Asset,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    accrued = AmountField(default=0)
    ledger_transaction = models.ForeignKey(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    price = models.ForeignKey(
        "plans.Price",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    hold_id = models.CharField(
        max_length=255, blank=True, default="", help_text="The hold this event captured."
    )
    request_hash = models.CharField(max_length=64, blank=True, default="")
    response = models.JSONField(
        null=True, blank=True, help_text="The original response, returned on a replay."
    )
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversal_transaction = models.ForeignKey(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["customer", "-timestamp"], name="event_customer_time"),
            models.Index(fields=["customer", "meter", "-timestamp"], name="event_customer_meter"),
            models.Index(fields=["-timestamp", "-id"], name="event_recent"),
            models.Index(fields=["asset"], name="event_asset"),
            # captures only: an ordinary event pays for no entry in it
            models.Index(fields=["hold_id"], condition=~Q(hold_id=""), name="event_hold"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event_id"], name="event_id_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="event_quantity_nonneg"),
            models.CheckConstraint(
                condition=Q(included__gte=0)
                & Q(billable__gte=0)
                & Q(amount__gte=0)
                & Q(accrued__gte=0),
                name="event_charge_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.status})"


class UsageCounter(models.Model):
    """The running totals of one price in one period of a subscription, updated in the same
    transaction as each event: ``billable`` is the period's cumulative billable quantity that
    prices the next increment (graduated tiers, packages)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="counters"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    price = models.ForeignKey("plans.Price", on_delete=models.PROTECT, related_name="+")
    quantity = AmountField(default=0)
    included = AmountField(default=0)
    billable = AmountField(default=0)
    amount = AmountField(default=0, help_text="Charged to the wallet, in the price's asset.")
    accrued = AmountField(default=0, help_text="Postpaid: left for the period's invoice.")
    events = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start", "price"], name="counter_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=0)
                & Q(included__gte=0)
                & Q(billable__gte=0)
                & Q(amount__gte=0)
                & Q(accrued__gte=0),
                name="counter_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.period_start:%Y-%m-%d} price {self.price_id}"


class SpendCounter(models.Model):
    """Spend of a customer in one spend-limit window (billing period or UTC day), in the
    billing currency: the value of usage charges, whatever paid for them."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    window = models.CharField(max_length=8)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    spent = AmountField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "window", "window_start"], name="spendcounter_unique"
            ),
            models.CheckConstraint(condition=Q(spent__gte=0), name="spendcounter_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.window} {self.window_start:%Y-%m-%d}: {plain(self.spent)}"


class Alert(models.Model):
    """Something staff should look at: a spend-limit threshold reached (once per window each),
    a limit exceeded, or a subscription or invoice the billing run could not process (one open
    alert per subscription and period, or per invoice; resolved when a later run succeeds)."""

    class Kind(models.TextChoices):
        THRESHOLD = "spend_limit.threshold_reached", "Spend threshold reached"
        EXCEEDED = "spend_limit.exceeded", "Spend limit exceeded"
        BALANCE_LOW = "wallet.balance_low", "Wallet balance low"
        CLOSE_FAILED = "billing.close_failed", "Period close failed"
        RATING_FAILED = "billing.rating_failed", "Rating failed"
        FINALIZE_FAILED = "billing.finalize_failed", "Invoice finalization failed"

    RUN_FAILURES = (Kind.CLOSE_FAILED, Kind.RATING_FAILED, Kind.FINALIZE_FAILED)

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=48, choices=Kind.choices)
    threshold = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Percent.")
    window_start = models.DateTimeField(null=True, blank=True)
    limit_amount = AmountField(null=True, blank=True)
    spent = AmountField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    event_id = models.CharField(max_length=255, blank=True, default="")
    subscription = models.ForeignKey(
        "Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invoice = models.ForeignKey(
        "Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period_start = models.DateTimeField(
        null=True, blank=True, help_text="The start of the period the run could not process."
    )
    reason = models.TextField(
        blank=True, default="", db_default="", help_text="The error, as logged."
    )
    attempts = models.PositiveIntegerField(
        default=1, db_default=1, help_text="Runs that failed on it."
    )
    last_failed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When a later run processed it."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind", "window_start", "threshold"],
                condition=Q(kind="spend_limit.threshold_reached"),
                name="alert_threshold_once_per_window",
            ),
            models.UniqueConstraint(
                fields=["kind", "subscription", "period_start"],
                condition=Q(kind__in=["billing.close_failed", "billing.rating_failed"])
                & Q(resolved_at__isnull=True),
                name="alert_run_failure_open_once",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="billing.finalize_failed") & Q(resolved_at__isnull=True),
                name="alert_finalize_failure_open_once",
            ),
        ]

    def __str__(self) -> str:
        if self.threshold is not None:
            return f"{self.customer_id}: {self.threshold}% of spend limit"
        return f"{self.customer_id}: {self.get_kind_display()}"


class SpendLimit(models.Model):
    class Window(models.TextChoices):
        PERIOD = "period", "Billing period"
        DAY = "day", "Calendar day (UTC)"

    class Mode(models.TextChoices):
        HARD = "hard", "Hard: decline"
        SOFT = "soft", "Soft: alert only"

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="spend_limit")
    amount = AmountField(help_text="In the customer's billing currency.")
    window = models.CharField(max_length=8, choices=Window.choices, default=Window.PERIOD)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.HARD)
    alert_thresholds = ArrayField(
        models.PositiveSmallIntegerField(), default=list, blank=True, help_text="Percents."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="spendlimit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.mode} limit {plain(self.amount)} per {self.window}"


class ChargeItem(models.Model):
    """A charge waiting for an invoice: seat and plan-change prorations, credits for unused
    time, and (later) accrued usage. Period close moves the open items of a subscription onto
    its invoice. ``source`` makes each item idempotent."""

    class Kind(models.TextChoices):
        BASE_FEE = "base_fee", "Base fee"
        SEATS = "seats", "Seats"
        USAGE = "usage", "Usage"
        OUTCOME = "outcome", "Outcome"
        PRORATION = "proration", "Proration"
        ADJUSTMENT = "adjustment", "Adjustment"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="charge_items")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="charge_items"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=500)
    currency = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": Asset.Kind.CURRENCY},
    )
    quantity = AmountField(null=True, blank=True)
    unit_price = AmountField(null=True, blank=True)
    amount = AmountField(help_text="Exact; negative for a credit. Rounded once on the invoice.")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=255, unique=True)
    invoice = models.ForeignKey(
        "Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="charge_items"
    )
    computation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["subscription", "created_at"],
                condition=Q(invoice__isnull=True),
                name="chargeitem_open",
            )
        ]

    def __str__(self) -> str:
        return self.description


class Invoice(models.Model):
    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscription period"
        ONE_OFF = "one_off", "One-off"
        CREDIT_NOTE = "credit_note", "Credit note"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        FINALIZED = "finalized", "Finalized"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SUBSCRIPTION)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    currency = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": Asset.Kind.CURRENCY},
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    subtotal = models.DecimalField(**INVOICE_AMOUNT, default=0)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0)
    tax = models.DecimalField(**INVOICE_AMOUNT, default=0)
    total = models.DecimalField(**INVOICE_AMOUNT, default=0)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=255, blank=True, default="")
    voided_at = models.DateTimeField(null=True, blank=True)
    credit_note_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="invoice_customer")]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(kind="subscription"),
                name="invoice_one_per_subscription_period",
            ),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") + F("tax")), name="invoice_total_is_sum"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False),
                name="invoice_numbered_when_final",
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0) & Q(tax_rate__lte=100), name="invoice_tax_0_100"
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"draft #{self.pk}"


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        BASE_FEE = "base_fee", "Base fee"
        SEATS = "seats", "Seats"
        USAGE = "usage", "Usage"
        OUTCOME = "outcome", "Outcome"
        CREDIT_PURCHASE = "credit_purchase", "Credit purchase"
        PRORATION = "proration", "Proration"
        ADJUSTMENT = "adjustment", "Adjustment"
        PAID_FROM_WALLET = "paid_from_wallet", "Paid from wallet"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=500)
    meter = models.ForeignKey(
        Meter, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    quantity = AmountField(null=True, blank=True)
    unit_price = AmountField(null=True, blank=True)
    amount = models.DecimalField(**INVOICE_AMOUNT, help_text="Rounded once to the minor unit.")
    amount_exact = AmountField(help_text="Before rounding.")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    computation = models.JSONField(default=dict, blank=True, help_text="How it was computed.")

    class Meta:
        ordering = ["invoice", "position", "id"]

    def __str__(self) -> str:
        return self.description


class InvoiceSequence(models.Model):
    """The last number given per prefix and year. Finalizing locks its row, so numbers are
    gapless under concurrency (a rolled-back finalization gives its number back)."""

    prefix = models.CharField(max_length=8)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="invoicesequence_unique")
        ]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last}"


class ApiKey(models.Model):
    """An integrator's key. Only a SHA-256 hash of the secret is stored; the key is shown once.
    Keys are 256-bit random, so a plain hash is as safe as a slow one and costs microseconds on
    every request."""

    class Scope(models.TextChoices):
        EVENTS = "events", "events: send usage, holds"
        READ = "read", "read: every GET"
        MANAGE = "manage", "manage: everything else"

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Heartbeat(models.Model):
    """Last time a Celery worker ran the scheduled heartbeat task: proof that beat schedules
    and a worker executes. Shown by /healthz and in the admin."""

    name = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255, blank=True, default="")
    last_seen_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
