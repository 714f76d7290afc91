"""Custom assets (credits, tokens, gpu_seconds, ...) and their rates. ISO 4217 currencies
exist from the first migration and are not created here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from django.db import IntegrityError, transaction

from core.errors import ValidationFailed
from wallets.models import ASSET_CODE_RE, Asset, AssetRate

from .amounts import check_amount


def asset_create(
    *, code: str, name: str = "", decimals: int = 0, rates: Sequence[Mapping] = ()
) -> Asset:
    """Create a custom asset with optional rates ``[{"currency": "USD", "rate": "0.01"}]``:
    the money value of one unit in each currency."""
    errors: dict[str, list[str]] = {}
    if not isinstance(code, str) or not re.fullmatch(ASSET_CODE_RE, code):
        errors["code"] = ["1–32 letters, digits or _, starting with a letter."]
    elif Asset.objects.filter(code__iexact=code).exists():
        errors["code"] = ["An asset with this code exists."]
    name = (name or code or "").strip() if isinstance(name, str) or name is None else None
    if not name or len(name) > 200:
        errors["name"] = ["1–200 characters."]
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 12:
        errors["decimals"] = ["An integer from 0 to 12."]
    parsed: dict[str, object] = {}
    for index, rate in enumerate(rates or ()):
        currency = rate.get("currency") if isinstance(rate, Mapping) else None
        if (
            not isinstance(currency, str)
            or not Asset.objects.filter(code=currency, kind=Asset.Kind.CURRENCY).exists()
        ):
            errors[f"rates[{index}].currency"] = ["An ISO 4217 currency code."]
            continue
        if currency in parsed:
            errors[f"rates[{index}].currency"] = ["Listed twice."]
            continue
        try:
            parsed[currency] = check_amount(rate.get("rate"), field=f"rates[{index}].rate")
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed("Invalid asset.", errors=errors)
    try:
        with transaction.atomic():
            asset = Asset.objects.create(
                code=code, name=name, kind=Asset.Kind.CUSTOM, decimals=decimals
            )
            AssetRate.objects.bulk_create(
                AssetRate(asset=asset, currency_id=cur, rate=value) for cur, value in parsed.items()
            )
    except IntegrityError:
        raise ValidationFailed(
            "An asset with this code exists.", errors={"code": ["Taken."]}
        ) from None
    return asset


def asset_ensure(*, code: str) -> Asset:
    """The asset ``code``; a custom asset with 0 decimals is created when it is unknown (a
    meter's unit may name a new unit)."""
    existing = Asset.objects.filter(code=code).first()
    if existing is not None:
        return existing
    try:
        return asset_create(code=code, name=code, decimals=0)
    except ValidationFailed:
        found = Asset.objects.filter(code=code).first()  # created concurrently
        if found is None:
            raise
        return found
