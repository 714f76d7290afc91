"""A customer's grants: ``wallets.services.grant_create`` with what only billing knows, the
meters a grant's scope may name (wallets knows no meters: a scope is a list of codes). The
API and the admin both go through ``customer_grant_create``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from billing.models import Customer
from core.errors import ValidationFailed
from plans.models import Meter
from wallets.models import Grant
from wallets.services import grant_create


def unknown_meters(meters: Sequence[Any] | None) -> list[str]:
    """The codes in ``meters`` that name no meter (what is not a code, ``grant_create``
    refuses in its own words)."""
    if meters is None or isinstance(meters, str):
        return []
    codes = {m.strip() for m in meters if isinstance(m, str) and m.strip()}
    known = set(Meter.objects.filter(code__in=codes).values_list("code", flat=True))
    return sorted(codes - known)


def customer_grant_create(
    *, customer: Customer, meters: Sequence[str] | None = None, **fields: Any
) -> Grant:
    """``grant_create`` into the customer's wallet, its scope checked against the meters;
    ``ValidationFailed`` names every unknown one, and nothing is written."""
    unknown = unknown_meters(meters)
    if unknown:
        raise ValidationFailed(
            f"Unknown meter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.",
            errors={"meters": [f"Unknown meter '{code}'." for code in unknown]},
        )
    return grant_create(wallet_id=customer.wallet_id, meters=meters, **fields)
