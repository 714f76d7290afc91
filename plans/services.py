"""Services of the catalogue: meters, plans and their immutable versions.

A plan version is never changed: ``plan_version_publish`` writes a new one (the database
refuses UPDATEs of versions and prices), and subscriptions stay on the version they have."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.db.models import Max

from core.errors import ValidationFailed
from core.text import plain
from plans.models import CODE_RE, Meter, Plan, PlanVersion, Price
from plans.pricing import PriceSpec, price_spec_as_data, price_spec_parse
from wallets.models import Asset
from wallets.services.amounts import check_amount
from wallets.services.assets import asset_ensure

MAX_PRICES = 100
MAX_FILTER_KEYS = 20
MAX_TRIAL_DAYS = 3650

PRICE_LIMIT = Decimal(10) ** 12
"""Every amount of money per unit the catalogue accepts — a unit price, a package price, a
tier's unit price and flat fee, a base fee, a seat price — is below this (quantities —
package sizes, tier bounds, included quantities — stay below 10^18, as any amount). With at
most ``MAX_SEATS`` (10^6) seats, a period's base fee and seats come to less than
10^18 + 10^12, far inside what an invoice line and total hold (below 10^26 at 4 places), so
whatever the catalogue accepts can be invoiced (docs/pricing.md)."""


def _price_limit_errors(model: PriceSpec, path: str) -> dict[str, list[str]]:
    """The money fields of a parsed price model at or above ``PRICE_LIMIT``, by path."""
    amounts = [("unit_price", model.unit_price), ("package_price", model.package_price)]
    for index, tier in enumerate(model.tiers):
        amounts.append((f"tiers[{index}].unit_price", tier.unit_price))
        amounts.append((f"tiers[{index}].flat_fee", tier.flat_fee))
    return {
        f"{path}.{name}": [f"Must be less than 10^{PRICE_LIMIT.adjusted()}."]
        for name, value in amounts
        if value is not None and value >= PRICE_LIMIT
    }


def _code_errors(value: Any) -> list[str]:
    if not isinstance(value, str) or not re.fullmatch(CODE_RE, value):
        return ["1–64 letters, digits, _ . : or -, starting with a letter or digit."]
    return []


def meter_create(
    *,
    code: str,
    name: str = "",
    unit: str,
    aggregation: str,
    event_property: str | None = None,
) -> Meter:
    """Create a meter. An unknown unit becomes a custom asset with 0 decimals."""
    errors: dict[str, list[str]] = {}
    if problems := _code_errors(code):
        errors["code"] = problems
    elif Meter.objects.filter(code=code).exists():
        errors["code"] = ["A meter with this code exists."]
    name = name if isinstance(name, str) else ""
    name = (name or (code if isinstance(code, str) else "")).strip()
    if not name or len(name) > 200:
        errors["name"] = ["1–200 characters."]
    if not isinstance(unit, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,31}$", unit):
        errors["unit"] = ["An asset code: 1–32 letters, digits or _, starting with a letter."]
    if aggregation not in Meter.Aggregation.values:
        errors["aggregation"] = [f"One of {', '.join(Meter.Aggregation.values)}."]
    if aggregation == Meter.Aggregation.UNIQUE_COUNT:
        if not isinstance(event_property, str) or not event_property.strip():
            errors["property"] = ["unique_count needs the event property to count."]
        elif len(event_property) > 128:
            errors["property"] = ["At most 128 characters."]
    elif event_property not in (None, ""):
        errors["property"] = ["Only unique_count meters use a property."]
    if errors:
        raise ValidationFailed("Invalid meter.", errors=errors)
    try:
        with transaction.atomic():
            asset = asset_ensure(code=unit)
            return Meter.objects.create(
                code=code,
                name=name,
                unit=asset,
                aggregation=aggregation,
                # a non-blank str for unique_count: checked above
                event_property=cast(str, event_property).strip()
                if aggregation == Meter.Aggregation.UNIQUE_COUNT
                else None,
            )
    except IntegrityError:
        raise ValidationFailed(
            "A meter with this code exists.", errors={"code": ["Taken."]}
        ) from None


def _check_filter(value: Any, path: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_FILTER_KEYS:
        errors[path] = [f"An object of at most {MAX_FILTER_KEYS} property: value pairs."]
        return {}
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 128:
            errors[path] = ["Property names are 1–128 characters."]
        elif isinstance(item, bool) or isinstance(item, str | int):
            if isinstance(item, str) and len(item) > 1000:
                errors[path] = ["Values are at most 1000 characters."]
            clean[key] = item
        else:
            errors[path] = ["Values are strings, integers or booleans."]
    return clean


def _check_version(
    spec: Mapping[str, Any],
) -> tuple[dict[str, Any], list[tuple[Meter, dict, Decimal, Asset, PriceSpec]]]:
    """Validate a version's fields and prices; ValidationFailed names every bad field."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    currency = spec.get("currency")
    asset = (
        Asset.objects.filter(code=currency, kind=Asset.Kind.CURRENCY).first()
        if isinstance(currency, str)
        else None
    )
    if asset is None:
        errors["currency"] = ["An ISO 4217 currency code."]
    fields["currency"] = asset
    interval = spec.get("interval")
    if interval not in PlanVersion.Interval.values:
        errors["interval"] = [f"One of {', '.join(PlanVersion.Interval.values)}."]
    fields["interval"] = interval
    for name, default, allow_null in (("base_fee", "0", False), ("seat_price", None, True)):
        raw = spec.get(name, default)
        if raw is None and allow_null:
            fields[name] = None
            continue
        try:
            places = asset.decimals if asset else 12
            fields[name] = check_amount(raw, field=name, allow_zero=True, max_places=places)
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        if fields[name] >= PRICE_LIMIT:
            errors[name] = [f"Must be less than 10^{PRICE_LIMIT.adjusted()}."]
    timing = spec.get("base_fee_timing", PlanVersion.Timing.IN_ADVANCE)
    if timing not in PlanVersion.Timing.values:
        errors["base_fee_timing"] = [f"One of {', '.join(PlanVersion.Timing.values)}."]
    fields["base_fee_timing"] = timing
    trial = spec.get("trial_days", 0)
    if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial <= MAX_TRIAL_DAYS:
        errors["trial_days"] = [f"An integer from 0 to {MAX_TRIAL_DAYS}."]
    fields["trial_days"] = trial

    prices_in = spec.get("prices", [])
    prices: list[tuple[Meter, dict, Decimal, Asset, PriceSpec]] = []
    if not isinstance(prices_in, list) or len(prices_in) > MAX_PRICES:
        errors["prices"] = [f"A list of at most {MAX_PRICES} prices."]
        prices_in = []
    meters = {m.code: m for m in Meter.objects.select_related("unit")}
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(prices_in):
        path = f"prices[{index}]"
        if not isinstance(raw, Mapping):
            errors[path] = ["A price object."]
            continue
        meter_code = raw.get("meter")
        meter = meters.get(meter_code) if isinstance(meter_code, str) else None
        if meter is None:
            errors[f"{path}.meter"] = ["Unknown meter."]
            continue
        price_filter = _check_filter(raw.get("filter"), f"{path}.filter", errors)
        key = (meter.code, json.dumps(price_filter, sort_keys=True))
        if key in seen:
            errors[f"{path}.filter"] = ["Another price has the same meter and filter."]
        seen.add(key)
        try:
            included = check_amount(
                raw.get("included", "0") if raw.get("included") is not None else "0",
                field=f"{path}.included",
                allow_zero=True,
                max_places=meter.unit.decimals,
            )
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        asset_code = raw.get("asset") or currency
        price_asset = (
            Asset.objects.filter(code=asset_code).first() if isinstance(asset_code, str) else None
        )
        if price_asset is None:
            errors[f"{path}.asset"] = ["Unknown asset."]
            continue
        try:
            model = price_spec_parse(raw)
        except ValidationFailed as exc:
            for field, messages in exc.errors.items():
                errors[f"{path}.{field}"] = messages
            continue
        if too_big := _price_limit_errors(model, path):
            errors.update(too_big)
            continue
        prices.append((meter, price_filter, included, price_asset, model))
    if errors:
        raise ValidationFailed("Invalid plan.", errors=errors)
    return fields, prices


def _write_version(plan: Plan, number: int, name: str, spec: Mapping[str, Any]) -> PlanVersion:
    fields, prices = _check_version(spec)
    version = PlanVersion.objects.create(plan=plan, version=number, name=name, **fields)
    Price.objects.bulk_create(
        Price(
            plan_version=version,
            position=index,
            meter=meter,
            filter=price_filter,
            included=included,
            asset=asset,
            **{k: v for k, v in price_spec_as_data(model).items() if k != "model"},
            model=model.model,
        )
        for index, (meter, price_filter, included, asset, model) in enumerate(prices)
    )
    return version


def plan_create(
    *, code: str, name: str, spec: Mapping[str, Any], description: str = ""
) -> PlanVersion:
    """Create a plan and publish its version 1 from ``spec`` (docs/api.md's plan body)."""
    errors: dict[str, list[str]] = {}
    if problems := _code_errors(code):
        errors["code"] = problems
    elif Plan.objects.filter(code=code).exists():
        errors["code"] = ["A plan with this code exists."]
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = ["1–200 characters."]
    if errors:
        raise ValidationFailed("Invalid plan.", errors=errors)
    try:
        with transaction.atomic():
            plan = Plan.objects.create(code=code, name=name.strip(), description=description)
            return _write_version(plan, 1, plan.name, spec)
    except IntegrityError:
        raise ValidationFailed(
            "A plan with this code exists.", errors={"code": ["Taken."]}
        ) from None


def plan_version_publish(
    *, plan: Plan, spec: Mapping[str, Any], name: str | None = None
) -> PlanVersion:
    """Publish the next version of ``plan``. Existing subscriptions keep their version."""
    with transaction.atomic():
        locked = Plan.objects.select_for_update().get(pk=plan.pk)
        latest = locked.versions.aggregate(n=Max("version"))["n"] or 0
        title = name if isinstance(name, str) and name.strip() else locked.name
        return _write_version(locked, latest + 1, title.strip()[:200], spec)


def plan_version_as_spec(version: PlanVersion) -> dict[str, Any]:
    """A version as docs/api.md's plan body, accepted back by ``plan_version_publish``."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else plain(value)

    prices = []
    for price in version.prices.all():
        item: dict[str, Any] = {
            "meter": price.meter.code,
            "filter": price.filter or {},
            "included": text(price.included),
            "model": price.model,
            "asset": price.asset_id,
        }
        if price.model == Price.Model.PER_UNIT:
            item["unit_price"] = text(price.unit_price)
        elif price.model == Price.Model.PACKAGE:
            item["package_size"] = text(price.package_size)
            item["package_price"] = text(price.package_price)
        else:
            item["tiers"] = price.tiers
        prices.append(item)
    return {
        "currency": version.currency_id,
        "interval": version.interval,
        "base_fee": text(version.base_fee),
        "base_fee_timing": version.base_fee_timing,
        "seat_price": text(version.seat_price),
        "trial_days": version.trial_days,
        "prices": prices,
    }


def price_spec(price: Price) -> PriceSpec:
    """The pure pricing model of a stored price."""
    return price_spec_parse(
        {
            "model": price.model,
            "unit_price": price.unit_price,
            "package_size": price.package_size,
            "package_price": price.package_price,
            "tiers": price.tiers,
        }
    )
