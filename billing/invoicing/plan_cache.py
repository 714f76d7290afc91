"""Plan versions and their prices, read once for a run of thousands of closes or
finalizations: they share a few versions, and published versions never change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from plans.models import PlanVersion, Price

# the prices (with meters) of plan versions, kept for the length of one run of
# ``subscriptions_close_due`` (thousands of closes share a few plan versions); None outside one
_RUN_PRICES: dict[frozenset[int], list[Price]] | None = None


# the plan versions (with their currency) of the same run: a close read each with a
# five-table join, whose planning alone (1.2 ms; the ORM's statements are not prepared)
# cost more than the rest of the lock's query. Published versions never change.
_RUN_VERSIONS: dict[int, PlanVersion] | None = None


@contextmanager
def plan_cache() -> Iterator[None]:
    """Inside it, each plan version and each set of versions' prices is read once: thousands
    of closes or finalizations share a few versions, and published versions never change.
    Nested, the outer one's cache serves."""
    global _RUN_PRICES, _RUN_VERSIONS
    if _RUN_PRICES is not None:
        yield
        return
    _RUN_PRICES, _RUN_VERSIONS = {}, {}
    try:
        yield
    finally:
        _RUN_PRICES = _RUN_VERSIONS = None


def plan_version(version_id: int) -> PlanVersion:
    if _RUN_VERSIONS is not None and version_id in _RUN_VERSIONS:
        return _RUN_VERSIONS[version_id]
    version = PlanVersion.objects.select_related("currency").get(pk=version_id)
    if _RUN_VERSIONS is not None:
        _RUN_VERSIONS[version_id] = version
    return version


def prices_of(version_ids: set[int]) -> list[Price]:
    key = frozenset(version_ids)
    if _RUN_PRICES is not None and key in _RUN_PRICES:
        return _RUN_PRICES[key]
    prices = list(
        Price.objects.filter(plan_version_id__in=key)
        .select_related("meter", "meter__unit")
        .order_by("position", "id")
    )
    if _RUN_PRICES is not None:
        _RUN_PRICES[key] = prices
    return prices
