"""Customers: created together with their wallet, in one transaction, and updated field by
field. The API and the admin both go through these functions."""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Customer
from core.errors import ValidationFailed
from core.ids import id_problems
from wallets.models import Asset, Wallet

WALLET_OWNER_PREFIX = "customer:"
# the wallet's owner label is "customer:<external_id>", so both columns bound the length
EXTERNAL_ID_MAX = min(
    Customer._meta.get_field("external_id").max_length,
    Wallet._meta.get_field("owner").max_length - len(WALLET_OWNER_PREFIX),
)
NAME_MAX = Customer._meta.get_field("name").max_length
EMAIL_MAX = 254
TAX_RATE_PLACES = Customer._meta.get_field("tax_rate").decimal_places
METADATA_MAX_BYTES = 16 * 1024

_email_validator = EmailValidator()


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def customer_wallet_owner(external_id: str) -> str:
    return f"{WALLET_OWNER_PREFIX}{external_id}"


def customer_create(
    *,
    external_id: str,
    name: str,
    email: str = "",
    currency: str | Asset,
    tax_rate: Decimal | int | str = Decimal("0"),
    metadata: dict[str, Any] | None = None,
) -> Customer:
    """Create a customer and its wallet (owner ``customer:<external_id>``) in one transaction.

    Raises ``ValidationFailed`` (``errors`` keyed by argument name) on bad input, an unknown or
    non-currency billing currency, or an ``external_id`` already taken; then nothing is written.
    """
    errors: dict[str, list[str]] = {}

    external_id_errors = _external_id_errors(external_id)
    if external_id_errors:
        errors["external_id"] = external_id_errors
    name_errors = _name_errors(name)
    if name_errors:
        errors["name"] = name_errors
    email = "" if email is None else email
    email_errors = _email_errors(email)
    if email_errors:
        errors["email"] = email_errors
    asset, currency_errors = _currency(currency)
    if currency_errors:
        errors["currency"] = currency_errors
    rate, tax_errors = _tax_rate(tax_rate)
    if tax_errors:
        errors["tax_rate"] = tax_errors
    metadata = {} if metadata is None else metadata
    metadata_errors = _metadata_errors(metadata)
    if metadata_errors:
        errors["metadata"] = metadata_errors
    if errors:
        raise ValidationFailed("The customer is not valid.", errors=errors)

    duplicate = ValidationFailed(
        f"A customer with external_id {external_id!r} already exists.",
        errors={"external_id": ["A customer with this external_id already exists."]},
    )
    owner = customer_wallet_owner(external_id)
    if (
        Customer.objects.filter(external_id=external_id).exists()
        or Wallet.objects.filter(owner=owner).exists()
    ):
        raise duplicate
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(owner=owner)
            return Customer.objects.create(
                external_id=external_id,
                name=name.strip(),
                email=email.strip(),
                currency=asset,
                tax_rate=rate,
                metadata=metadata,
                wallet=wallet,
            )
    except IntegrityError as exc:
        # a concurrent create of the same external_id won the race
        if getattr(exc.__cause__, "sqlstate", None) == "23505":
            raise duplicate from exc
        raise


def customer_update(
    *,
    customer: Customer,
    name: str = UNSET,
    email: str = UNSET,
    currency: str | Asset = UNSET,
    tax_rate: Decimal | int | str = UNSET,
    metadata: dict[str, Any] = UNSET,
) -> Customer:
    """Change the given fields of ``customer`` (``external_id`` never changes: it names the
    customer and its wallet). The billing currency is fixed once the customer has a subscription
    or an invoice. Raises ``ValidationFailed`` and writes nothing on bad input; returns the
    customer as stored."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if name is not UNSET:
        if problems := _name_errors(name):
            errors["name"] = problems
        else:
            changes["name"] = name.strip()
    if email is not UNSET:
        email = "" if email is None else email
        if problems := _email_errors(email):
            errors["email"] = problems
        else:
            changes["email"] = email.strip()
    if currency is not UNSET:
        asset, problems = _currency(currency)
        if problems:
            errors["currency"] = problems
        elif asset.code != customer.currency_id:
            if customer.subscriptions.exists() or customer.invoices.exists():
                errors["currency"] = [
                    "The billing currency cannot change once the customer has subscriptions "
                    "or invoices."
                ]
            else:
                changes["currency"] = asset
    if tax_rate is not UNSET:
        rate, problems = _tax_rate(tax_rate)
        if problems:
            errors["tax_rate"] = problems
        else:
            changes["tax_rate"] = rate
    if metadata is not UNSET:
        metadata = {} if metadata is None else metadata
        if problems := _metadata_errors(metadata):
            errors["metadata"] = problems
        else:
            changes["metadata"] = metadata
    if errors:
        raise ValidationFailed("The customer is not valid.", errors=errors)
    if changes:
        Customer.objects.filter(pk=customer.pk).update(**changes, updated_at=timezone.now())
    customer.refresh_from_db()
    return customer


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def _external_id_errors(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["Must be a string."]
    if not value or value.isspace():
        return [f"Required: 1 to {EXTERNAL_ID_MAX} characters, not only whitespace."]
    problems = []
    if len(value) > EXTERNAL_ID_MAX:
        problems.append(f"At most {EXTERNAL_ID_MAX} characters.")
    if value != value.strip():
        problems.append("Must not start or end with whitespace.")
    return problems + id_problems(value, slash=False)


def _name_errors(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["Must be a string."]
    value = value.strip()
    if not value:
        return ["Required."]
    problems = []
    if len(value) > NAME_MAX:
        problems.append(f"At most {NAME_MAX} characters.")
    if _has_control_characters(value):
        problems.append("Must not contain control characters.")
    return problems


def _email_errors(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["Must be a string."]
    value = value.strip()
    if not value:
        return []
    if len(value) > EMAIL_MAX:
        return [f"At most {EMAIL_MAX} characters."]
    try:
        _email_validator(value)
    except ValidationError:
        return ["Enter a valid email address."]
    return []


def _currency(value: Any) -> tuple[Asset | None, list[str]]:
    if isinstance(value, Asset):
        asset = value
    elif isinstance(value, str) and value:
        asset = Asset.objects.filter(code=value).first()
        if asset is None:
            return None, [f"Unknown currency: {value[:32]!r}."]
    else:
        return None, ["Required: an ISO 4217 currency code."]
    if asset.kind != Asset.Kind.CURRENCY:
        return None, [f"{asset.code} is a custom asset, not an ISO 4217 currency."]
    return asset, []


def _tax_rate(value: Any) -> tuple[Decimal | None, list[str]]:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        return None, ["Must be a decimal number (a string or an integer), never a float."]
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        return None, ["Must be a decimal number."]
    if not rate.is_finite():
        return None, ["Must be a finite number."]
    if rate < 0 or rate > 100:
        return None, ["Must be between 0 and 100 (percent)."]
    if rate != rate.quantize(Decimal(1).scaleb(-TAX_RATE_PLACES)):
        return None, [f"At most {TAX_RATE_PLACES} decimal places."]
    return rate, []


def _metadata_errors(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["Must be a JSON object."]
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return ["Must be JSON-serializable."]
    if len(encoded.encode()) > METADATA_MAX_BYTES:
        return [f"At most {METADATA_MAX_BYTES // 1024} KiB of JSON."]
    if "\\u0000" in encoded:
        return ["Must not contain NUL characters."]
    return []
