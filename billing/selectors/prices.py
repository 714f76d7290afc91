"""Prices of a plan version, parsed once per process. Plan versions and their prices are
immutable (a database trigger refuses UPDATEs), so the cache needs no invalidation: a change
is a new version with new ids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from threading import Lock
from typing import Any

from plans.models import Price
from plans.pricing import PriceSpec
from plans.services import price_spec

_CACHE: dict[int, tuple[CachedPrice, ...]] = {}
_LOCK = Lock()
_MAX_VERSIONS = 10_000


@dataclass(frozen=True)
class CachedPrice:
    id: int
    meter_id: int
    filter: dict[str, Any]
    included: Decimal
    asset: str
    asset_decimals: int
    asset_is_currency: bool
    spec: PriceSpec
    position: int

    def matches(self, properties: Mapping[str, Any]) -> bool:
        return all(properties.get(key) == value for key, value in self.filter.items())


def version_prices(version_id: int) -> tuple[CachedPrice, ...]:
    cached = _CACHE.get(version_id)
    if cached is not None:
        return cached
    rows = (
        Price.objects.filter(plan_version_id=version_id)
        .select_related("asset")
        .order_by("position", "id")
    )
    prices = tuple(
        CachedPrice(
            id=p.pk,
            meter_id=p.meter_id,
            filter=dict(p.filter or {}),
            included=p.included,
            asset=p.asset_id,
            asset_decimals=p.asset.decimals,
            asset_is_currency=p.asset.is_currency,
            spec=price_spec(p),
            position=p.position,
        )
        for p in rows
    )
    with _LOCK:
        if len(_CACHE) >= _MAX_VERSIONS:
            _CACHE.clear()
        _CACHE[version_id] = prices
    return prices


def price_for_event(
    version_id: int, meter_id: int, properties: Mapping[str, Any]
) -> CachedPrice | None:
    """The price of ``meter_id`` whose filter matches the event: the most specific filter
    (most properties) wins; among equals, the first listed."""
    best: CachedPrice | None = None
    for price in version_prices(version_id):
        if price.meter_id != meter_id or not price.matches(properties):
            continue
        if best is None or len(price.filter) > len(best.filter):
            best = price
    return best
