"""The catalogue: meters, plans with immutable versions, and prices.

A plan version is immutable once it exists (a database trigger refuses UPDATE of versions and
their prices); a change publishes a new version and existing subscriptions stay on theirs.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from plans.pricing import ADDITIVE_AGGREGATIONS, VOLUME
from wallets.fields import AmountField
from wallets.models import Asset

CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class Meter(models.Model):
    """What is measured. ``sum`` and ``count`` are additive and charged event by event; the
    others are rated periodically."""

    class Aggregation(models.TextChoices):
        SUM = "sum", "Sum of quantities"
        COUNT = "count", "Count of events"
        MAX = "max", "Maximum quantity"
        UNIQUE_COUNT = "unique_count", "Unique values of a property"
        LATEST = "latest", "Latest quantity"

    ADDITIVE = ADDITIVE_AGGREGATIONS  # plans.pricing: the one list of additive aggregations

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    unit = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    event_property = models.CharField(
        max_length=128, null=True, blank=True, help_text="Event property for unique_count."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=CODE_RE), name="meter_code_format"),
            models.CheckConstraint(
                condition=Q(aggregation="unique_count", event_property__isnull=False)
                | (~Q(aggregation="unique_count") & Q(event_property__isnull=True)),
                name="meter_property_iff_unique_count",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_additive(self) -> bool:
        return self.aggregation in self.ADDITIVE


class Plan(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=CODE_RE), name="plan_code_format"),
        ]

    def __str__(self) -> str:
        return self.code


class PlanVersion(models.Model):
    class Interval(models.TextChoices):
        DAY = "day", "Daily"
        WEEK = "week", "Weekly"
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    class Timing(models.TextChoices):
        IN_ADVANCE = "in_advance", "In advance"
        IN_ARREARS = "in_arrears", "In arrears"

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    currency = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": Asset.Kind.CURRENCY},
    )
    interval = models.CharField(max_length=8, choices=Interval.choices)
    base_fee = AmountField(default=0)
    base_fee_timing = models.CharField(
        max_length=16, choices=Timing.choices, default=Timing.IN_ADVANCE
    )
    seat_price = AmountField(null=True, blank=True, help_text="Per seat per interval, in advance.")
    trial_days = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["plan", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "version"], name="planversion_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="planversion_from_1"),
            models.CheckConstraint(condition=Q(base_fee__gte=0), name="planversion_fee_nonneg"),
            models.CheckConstraint(
                condition=Q(seat_price__isnull=True) | Q(seat_price__gte=0),
                name="planversion_seat_nonneg",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code} v{self.version}"


class Price(models.Model):
    class Model(models.TextChoices):
        PER_UNIT = "per_unit", "Per unit"
        PACKAGE = "package", "Package"
        GRADUATED = "graduated", "Graduated"
        VOLUME = "volume", "Volume"

    plan_version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="prices")
    position = models.PositiveIntegerField(default=0)
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="prices")
    filter = models.JSONField(
        default=dict, blank=True, help_text='Event properties to match, e.g. {"model": "gpt-4o"}.'
    )
    included = AmountField(default=0, help_text="Included quantity per period (the allowance).")
    model = models.CharField(max_length=16, choices=Model.choices)
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", help_text="Asset charged."
    )
    unit_price = AmountField(null=True, blank=True)
    package_size = AmountField(null=True, blank=True)
    package_price = AmountField(null=True, blank=True)
    tiers = models.JSONField(
        null=True,
        blank=True,
        help_text='[{"up_to": "10000000" or null, "unit_price": "0.000002", "flat_fee": "0"}]',
    )

    class Meta:
        ordering = ["plan_version", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(included__gte=0), name="price_included_nonneg"),
            models.CheckConstraint(
                condition=Q(unit_price__isnull=True) | Q(unit_price__gte=0),
                name="price_unit_price_nonneg",
            ),
            models.CheckConstraint(
                condition=Q(package_size__isnull=True) | Q(package_size__gt=0),
                name="price_package_size_positive",
            ),
            models.CheckConstraint(
                condition=Q(package_price__isnull=True) | Q(package_price__gte=0),
                name="price_package_price_nonneg",
            ),
            models.CheckConstraint(
                condition=~Q(model="per_unit") | Q(unit_price__isnull=False),
                name="price_per_unit_has_unit_price",
            ),
            models.CheckConstraint(
                condition=~Q(model="package")
                | (Q(package_size__isnull=False) & Q(package_price__isnull=False)),
                name="price_package_has_size_and_price",
            ),
            models.CheckConstraint(
                condition=~Q(model__in=["graduated", "volume"]) | Q(tiers__isnull=False),
                name="price_tiered_has_tiers",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter.code} {self.model} ({self.plan_version})"


def rated_periodically_q() -> Q:
    """``plans.pricing.rated_periodically`` as a filter on prices: a volume price, or a meter
    whose aggregation is not additive."""
    return Q(model=VOLUME) | ~Q(meter__aggregation__in=ADDITIVE_AGGREGATIONS)
