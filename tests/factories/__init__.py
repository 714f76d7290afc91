"""factory-boy factories for the tests, one module per app. Rows that a service writes with
bookkeeping (wallets, grants, meters, published plans, customers, subscriptions, keys) are
made through that service; see docs/quality.md, "Tests"."""

from .billing import ApiKeyFactory, CustomerFactory, SubscriptionFactory
from .plans import (
    MeterFactory,
    PlanFactory,
    PlanVersionFactory,
    PriceFactory,
    PublishedPlanFactory,
    tokens_price,
)
from .wallets import AssetFactory, GrantFactory, WalletFactory

__all__ = [
    "ApiKeyFactory",
    "AssetFactory",
    "CustomerFactory",
    "GrantFactory",
    "MeterFactory",
    "PlanFactory",
    "PlanVersionFactory",
    "PriceFactory",
    "PublishedPlanFactory",
    "SubscriptionFactory",
    "WalletFactory",
    "tokens_price",
]
