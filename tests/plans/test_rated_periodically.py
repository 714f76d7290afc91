"""Which prices are rated periodically, decided once: ``plans.pricing.rated_periodically``
(Python, what an event's charge asks) and ``plans.models.rated_periodically_q`` (the query
the rating job selects prices with) agree for every aggregation and price model."""

from __future__ import annotations

import pytest

from plans.models import Meter, Price, rated_periodically_q
from plans.pricing import MODELS, VOLUME, rated_periodically
from plans.services import meter_create, plan_create
from tests.wallets.helpers import ensure_currencies

PRICES = {
    "per_unit": {"model": "per_unit", "unit_price": "0.5"},
    "package": {"model": "package", "package_size": "10", "package_price": "1"},
    "graduated": {"model": "graduated", "tiers": [{"up_to": None, "unit_price": "0.5"}]},
    "volume": {"model": "volume", "tiers": [{"up_to": None, "unit_price": "0.5"}]},
}


@pytest.mark.django_db
def test_the_query_and_the_function_agree_for_every_aggregation_and_model():
    ensure_currencies()
    assert set(PRICES) == set(MODELS)
    for aggregation in Meter.Aggregation.values:
        meter_create(
            code=f"m_{aggregation}",
            unit="tokens",
            aggregation=aggregation,
            event_property="user" if aggregation == "unique_count" else None,
        )
        for model in MODELS:  # a plan prices a meter once
            spec = {
                "currency": "USD",
                "interval": "month",
                "prices": [{"meter": f"m_{aggregation}", **PRICES[model]}],
            }
            plan_create(code=f"p_{aggregation}_{model}", name=model, spec=spec)
    prices = Price.objects.select_related("meter")
    assert prices.count() == len(Meter.Aggregation.values) * len(MODELS)
    selected = set(prices.filter(rated_periodically_q()).values_list("pk", flat=True))
    expected = {
        p.pk for p in prices if rated_periodically(aggregation=p.meter.aggregation, model=p.model)
    }
    assert selected == expected
    # and the rule is the one the docs state: volume, or a meter that is not sum or count
    assert expected == {
        p.pk for p in prices if p.model == VOLUME or p.meter.aggregation not in ("sum", "count")
    }
