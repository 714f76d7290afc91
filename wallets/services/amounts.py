"""Parsing and checking of amounts: Decimal only, finite, bounded, at most 12 places.

An amount, a quantity or a price arrives as a decimal string of ASCII digits with an
optional sign and one optional ``.`` (``"10.00"``, ``"-3"``, ``".5"``; no exponent, no
other script's digits, which Python's ``Decimal`` would read), or as a JSON integer. A JSON
number with a fraction or an exponent (``1.5``, ``1e3``) is refused: the API's parser reads
it as a ``JsonFraction``, which free-form data (properties, metadata) keeps as a number."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

from core.errors import ValidationFailed
from core.numbers import SEND_AS_STRINGS, JsonFraction, is_decimal_text
from wallets.fields import AMOUNT_DIGITS, AMOUNT_PLACES

MAX_AMOUNT = Decimal(10) ** 18
QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)
# Below 10^18 at 12 places an amount has up to 30 digits: more than the default context's 28.
WIDE = Context(prec=AMOUNT_DIGITS)


def to_decimal(value: object, *, field: str = "amount") -> Decimal:
    """A Decimal from a Decimal, int or decimal string; never from a float, a JSON number
    with a fraction or a bool."""
    if isinstance(value, bool | float | JsonFraction):
        raise ValidationFailed(
            f"{field} must be a decimal string, not a number with a fraction.",
            errors={field: [SEND_AS_STRINGS]},
        )
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not is_decimal_text(text):
            raise ValidationFailed(
                f"{field} is not a decimal number.",
                errors={field: ['A decimal number of ASCII digits, e.g. "10.00".']},
            )
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
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
