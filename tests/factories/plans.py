"""Factories for the catalogue: meters, plans, their versions and prices.

``MeterFactory`` and ``PublishedPlanFactory`` go through ``meter_create`` and
``plan_create``/``plan_version_publish`` (the unit asset, the version number and the price
positions are theirs to write). ``PlanFactory``, ``PlanVersionFactory`` and ``PriceFactory``
write the rows as given, for tests that show stored rows (the admin) rather than exercise the
catalogue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from plans.models import Meter, Plan, PlanVersion, Price
from plans.services import meter_create, plan_create, plan_version_publish
from wallets.models import Asset

TOKENS_UNIT_PRICE = "0.000002"


class MeterFactory(DjangoModelFactory):
    """A meter through ``meter_create``: summed ``tokens`` by default (``unit`` is an asset
    code or an Asset; an unknown code becomes a custom asset). A meter of the same code is
    returned as it is.

    Traits: ``llm_tokens`` (the docs' ``llm_tokens``, summed tokens), ``images`` (counted
    images), ``counted`` (aggregation ``count``)."""

    class Meta:
        model = Meter

    code = factory.Sequence(lambda n: f"meter_{n}")
    name = ""
    unit = "tokens"
    aggregation = Meter.Aggregation.SUM

    class Params:
        llm_tokens = factory.Trait(code="llm_tokens", unit="tokens")
        images = factory.Trait(code="images", unit="images", aggregation=Meter.Aggregation.COUNT)
        counted = factory.Trait(aggregation=Meter.Aggregation.COUNT)

    @classmethod
    def _create(cls, model_class: type[Meter], *args: Any, **kwargs: Any) -> Meter:
        existing = Meter.objects.filter(code=kwargs["code"]).first()
        if existing is not None:
            return existing
        unit = kwargs.pop("unit")
        return meter_create(unit=unit.code if isinstance(unit, Asset) else unit, **kwargs)


def tokens_price(included: str = "0", unit_price: str = TOKENS_UNIT_PRICE) -> dict[str, Any]:
    """A per-unit price on ``llm_tokens`` with ``included`` tokens a period (a plan spec's
    price item)."""
    return {
        "meter": "llm_tokens",
        "included": included,
        "model": "per_unit",
        "unit_price": unit_price,
    }


def hybrid_prices() -> list[dict[str, Any]]:
    """The ``hybrid`` trait's prices: 1,000,000 ``llm_tokens`` included (the meter is made
    if missing), then USD 0.000002 a token."""
    MeterFactory(llm_tokens=True)
    return [tokens_price("1000000")]


class PublishedPlanFactory(DjangoModelFactory):
    """A plan version published from a spec (docs/api.md's plan body) through
    ``plan_create``, or through ``plan_version_publish`` when ``plan`` (a Plan) is given.

    The spec is ``currency``, ``interval``, ``base_fee``, ``base_fee_timing``,
    ``seat_price``, ``trial_days`` and ``prices`` (price items naming existing meters); the
    defaults are the service's own (a free monthly USD plan without prices), so a spec that
    leaves a field out stores the same row as one that gives its default.

    Traits: ``seats`` (USD 20.00 a seat), ``trial`` (14 days), ``yearly``, ``in_arrears``
    (the base fee at the period's end), ``hybrid`` (USD 49.00 a month with 1,000,000
    ``llm_tokens`` included, then USD 0.000002 a token; makes the meter)."""

    class Meta:
        model = PlanVersion

    plan = None
    code = factory.Sequence(lambda n: f"plan{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    description = ""
    currency = "USD"
    interval = PlanVersion.Interval.MONTH
    base_fee = "0"
    base_fee_timing = PlanVersion.Timing.IN_ADVANCE
    seat_price = None
    trial_days = 0
    prices: Sequence[Mapping[str, Any]] = ()

    class Params:
        seats = factory.Trait(seat_price="20.00")
        trial = factory.Trait(trial_days=14)
        yearly = factory.Trait(interval=PlanVersion.Interval.YEAR)
        in_arrears = factory.Trait(base_fee_timing=PlanVersion.Timing.IN_ARREARS)
        hybrid = factory.Trait(
            base_fee="49.00", prices=factory.LazyFunction(lambda: hybrid_prices())
        )

    @classmethod
    def _create(cls, model_class: type[PlanVersion], *args: Any, **kwargs: Any) -> PlanVersion:
        plan = kwargs.pop("plan")
        code = kwargs.pop("code")
        name = kwargs.pop("name")
        description = kwargs.pop("description")
        spec = {**kwargs, "prices": [dict(p) for p in kwargs["prices"]]}
        if plan is not None:
            return plan_version_publish(plan=plan, spec=spec)
        return plan_create(code=code, name=name, spec=spec, description=description)


class PlanFactory(DjangoModelFactory):
    """A plan row without versions (an existing plan of the same code is returned)."""

    class Meta:
        model = Plan
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"plan{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())


class PlanVersionFactory(DjangoModelFactory):
    """A version row: the next number of its plan, named after it, monthly in USD (an
    existing version of the plan and number is returned)."""

    class Meta:
        model = PlanVersion
        django_get_or_create = ("plan", "version")

    plan = factory.SubFactory(PlanFactory)
    version = factory.LazyAttribute(lambda o: o.plan.versions.count() + 1)
    name = factory.LazyAttribute(lambda o: o.plan.name)
    currency = factory.LazyFunction(lambda: Asset.objects.get(code="USD"))
    interval = PlanVersion.Interval.MONTH
    base_fee = Decimal("0")


class PriceFactory(DjangoModelFactory):
    """A price row: per unit, USD 0.01 a unit of a new meter, in the version's currency.

    Trait ``graduated``: the admin's two token tiers (USD 0.000002 up to 10,000,000, then
    USD 0.0000015) after 1,000,000 included."""

    class Meta:
        model = Price

    plan_version = factory.SubFactory(PlanVersionFactory)
    meter = factory.SubFactory(MeterFactory)
    model = Price.Model.PER_UNIT
    asset = factory.LazyAttribute(lambda o: o.plan_version.currency)
    unit_price = Decimal("0.01")

    class Params:
        graduated = factory.Trait(
            model=Price.Model.GRADUATED,
            unit_price=None,
            included=Decimal("1000000"),
            tiers=[
                {"up_to": "10000000", "unit_price": "0.000002", "flat_fee": "0"},
                {"up_to": None, "unit_price": "0.0000015"},
            ],
        )
