"""Factories for the ledger's rows: assets, wallets and grants.

Grants go through ``grant_create`` (it posts the ledger transaction and keeps the account
balances), so a factory-made grant reconciles like any other."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from wallets.models import Asset, AssetRate, Grant, Wallet
from wallets.services import grant_create, wallet_create


class AssetFactory(DjangoModelFactory):
    """A custom asset, 0 decimals by default; an existing asset of the same code is returned
    as it is. ``rates={"USD": "0.01"}`` adds the money value of one unit (kept if present).

    Trait ``credits``: docs/charging.md example D's ``credits``, 1 credit = USD 0.01."""

    class Meta:
        model = Asset
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"asset{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    kind = Asset.Kind.CUSTOM
    decimals = 0

    class Params:
        credits = factory.Trait(code="credits", name="Credits", rates={"USD": Decimal("0.01")})

    rates: dict[str, Any] | None = None

    @classmethod
    def _create(cls, model_class: type[Asset], *args: Any, **kwargs: Any) -> Asset:
        rates = kwargs.pop("rates") or {}
        asset = super()._create(model_class, *args, **kwargs)
        for currency, rate in rates.items():
            AssetRate.objects.get_or_create(
                asset=asset, currency_id=currency, defaults={"rate": Decimal(rate)}
            )
        return asset


class WalletFactory(DjangoModelFactory):
    """A wallet through ``wallet_create`` (the same owner gives the same wallet)."""

    class Meta:
        model = Wallet

    owner = factory.Sequence(lambda n: f"test:wallet-{n}")

    @classmethod
    def _create(cls, model_class: type[Wallet], *args: Any, **kwargs: Any) -> Wallet:
        return wallet_create(**kwargs)


class GrantFactory(DjangoModelFactory):
    """A grant of USD 10.00 (paid) through ``grant_create``, into a new wallet unless
    ``wallet`` (a Wallet or its id) is given. ``asset`` is a code or an Asset; every other
    keyword of ``grant_create`` (``priority``, ``expires_at``, ``grant_id``, ``meters``,
    ``reference``, ...) passes through.

    Traits: ``promotional`` (free credit), ``prepaid_credits`` (1,000 paid ``credits``)."""

    class Meta:
        model = Grant

    wallet = factory.SubFactory(WalletFactory)
    asset = "USD"
    amount = Decimal("10.00")
    purpose = Grant.Purpose.PAID

    class Params:
        promotional = factory.Trait(purpose=Grant.Purpose.PROMOTIONAL)
        prepaid_credits = factory.Trait(
            asset=factory.SubFactory(AssetFactory, credits=True), amount=Decimal("1000")
        )

    @classmethod
    def _create(cls, model_class: type[Grant], *args: Any, **kwargs: Any) -> Grant:
        wallet = kwargs.pop("wallet")
        asset = kwargs.pop("asset")
        return grant_create(
            wallet_id=wallet.pk if isinstance(wallet, Wallet) else wallet,
            asset=asset.code if isinstance(asset, Asset) else asset,
            **kwargs,
        )
