"""The one form of a decimal number in a request (no Django, no database: the pure pricing
module uses it too). ``wallets.services.amounts`` applies it to amounts and quantities."""

from __future__ import annotations

import re
from decimal import Decimal

DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
WHOLE_TEXT = re.compile(r"[+-]?[0-9]+")  # an integer as text: ASCII digits only
SEND_AS_STRINGS = 'Send decimals as strings, e.g. "10.00".'


class JsonFraction(Decimal):
    """A JSON number with a fraction or an exponent, exactly as written: what the API's
    parser makes of ``1.5`` or ``1e3``. Free-form data keeps it as a number; as an amount,
    quantity or price it is refused (``to_decimal``)."""

    __slots__ = ()


def is_decimal_text(value: str) -> bool:
    """ASCII digits with an optional sign and one optional ``.``: the one form of a decimal
    string (``Decimal`` alone would also read exponents, NaN and other scripts' digits)."""
    return DECIMAL_TEXT.fullmatch(value) is not None
