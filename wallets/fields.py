"""Decimal columns shared by every Billfold table that stores amounts or quantities.

The ledger keeps every asset at 12 decimal places (docs/charging.md): a charge of one token at
$0.000002 is 0.000002, never 0. 38 digits leave room for 10^18 units at full precision."""

from decimal import Decimal
from typing import Any

from django.db import models

AMOUNT_DIGITS = 38
AMOUNT_PLACES = 12
ZERO = Decimal("0")


def AmountField(**kwargs: Any) -> models.DecimalField:
    kwargs.setdefault("max_digits", AMOUNT_DIGITS)
    kwargs.setdefault("decimal_places", AMOUNT_PLACES)
    return models.DecimalField(**kwargs)
