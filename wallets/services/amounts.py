"""Parsing and checking of amounts: Decimal only, finite, bounded, at most 12 places."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

from wallets.errors import ValidationFailed
from wallets.fields import AMOUNT_DIGITS, AMOUNT_PLACES

MAX_AMOUNT = Decimal(10) ** 18
QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)
# Below 10^18 at 12 places an amount has up to 30 digits: more than the default context's 28.
WIDE = Context(prec=AMOUNT_DIGITS)


def to_decimal(value: object, *, field: str = "amount") -> Decimal:
    """A Decimal from a Decimal, int or numeric string; never from a float or a bool."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValidationFailed(
            f"{field} must be a decimal string, not a float.",
            errors={field: ['Send decimals as strings, e.g. "10.00".']},
        )
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationFailed(
                f"{field} is not a number.", errors={field: ["A valid number is required."]}
            ) from None
    else:
        raise ValidationFailed(
            f"{field} is not a number.", errors={field: ["A number is required."]}
        )
    if not number.is_finite():
        raise ValidationFailed(f"{field} must be finite.", errors={field: ["Must be finite."]})
    return number


def places(number: Decimal) -> int:
    exponent = number.normalize(context=WIDE).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_amount(
    value: object,
    *,
    field: str = "amount",
    positive: bool = True,
    max_places: int = AMOUNT_PLACES,
    allow_zero: bool = False,
) -> Decimal:
    """Parse and check an amount or quantity; ValidationFailed names the field."""
    number = to_decimal(value, field=field)
    if number < 0 or (positive and not allow_zero and number == 0):
        word = "zero or more" if allow_zero else "greater than zero"
        raise ValidationFailed(f"{field} must be {word}.", errors={field: [f"Must be {word}."]})
    if abs(number) >= MAX_AMOUNT:
        raise ValidationFailed(
            f"{field} is too large.", errors={field: ["Must be less than 10^18."]}
        )
    if places(number) > max_places:
        raise ValidationFailed(
            f"{field} has more than {max_places} decimal places.",
            errors={field: [f"At most {max_places} decimal places."]},
        )
    return number.quantize(QUANTUM, context=WIDE)
