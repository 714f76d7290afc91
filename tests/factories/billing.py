"""Factories for billing's rows: customers (with their wallets), subscriptions and API keys,
each through its service."""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from billing.models import ApiKey, Customer, Subscription
from billing.services.api_keys import api_key_create
from billing.services.customers import customer_create
from billing.subscriptions import subscription_create

from .plans import PublishedPlanFactory

ALL_SCOPES = ("events", "read", "manage")


class CustomerFactory(DjangoModelFactory):
    """A customer billed in USD without tax, through ``customer_create`` (which makes its
    wallet, owner ``customer:<external_id>``).

    Traits: ``acme`` (the docs' ``acme``, "Acme Inc."), ``eur`` (billed in EUR)."""

    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"customer{n}")
    name = factory.LazyAttribute(lambda o: o.external_id.title())
    email = ""
    currency = "USD"
    tax_rate = "0"

    class Params:
        acme = factory.Trait(external_id="acme", name="Acme Inc.")
        eur = factory.Trait(currency="EUR")

    @classmethod
    def _create(cls, model_class: type[Customer], *args: Any, **kwargs: Any) -> Customer:
        return customer_create(**kwargs)


class SubscriptionFactory(DjangoModelFactory):
    """A subscription through ``subscription_create``: a new customer on a new free monthly
    plan from now, one seat. ``plan`` is a PlanVersion or a plan code; ``start``, ``seats``,
    ``overage``, ``backdate`` and ``invoice_missed_periods`` pass through."""

    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PublishedPlanFactory)
    seats = 1

    @classmethod
    def _create(cls, model_class: type[Subscription], *args: Any, **kwargs: Any) -> Subscription:
        return subscription_create(**kwargs)


class ApiKeyFactory(DjangoModelFactory):
    """A key with every scope through ``api_key_create``; the secret, shown once, is kept on
    the returned row as ``raw``."""

    class Meta:
        model = ApiKey

    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.LazyFunction(lambda: list(ALL_SCOPES))

    @classmethod
    def _create(cls, model_class: type[ApiKey], *args: Any, **kwargs: Any) -> ApiKey:
        key, raw = api_key_create(**kwargs)
        key.raw = raw
        return key
