"""How numbers, amounts and periods read as text, once for every app.

Decimals are exact: no function here rounds unless it says so, none writes an exponent
(``1E+6``, ``0E-12``) and none writes a negative zero (``-0``, ``-0.00``).

- ``plain``: a number as short as it is exact, ``100``, ``0.000002`` (model labels,
  descriptions, answers' quantities);
- ``plain_decimals``: every Decimal in a structure as the text of its stored places,
  ``"10.000000000000"`` (error members, problem details);
- ``fixed_text``: exactly ``places`` places, half-up, no separators (API amounts);
- ``number_text``: thousands separators and at least ``min_places`` places, never rounding
  (admin columns, invoice quantities and unit prices, price descriptions; without the
  separators in CSV cells);
- ``money_text``: an amount at the currency's minor unit, half-up, with separators (invoice
  and statement totals);
- ``period_text``: the days a half-open period ``[start, end)`` covers, the end shown
  inclusively (``2026-01-01 – 2026-01-31`` for January), as invoices and statements show it;
- ``bounds_text``: a period's two bounds as stored, end exclusive (``2026-01-01 –
  2026-02-01``), as invoice lines' stored descriptions name their period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

ZERO = Decimal(0)
# wide enough that quantizing an amount below 10^18 at up to 100 places never fails
_EXACT = Context(prec=200, rounding=ROUND_HALF_UP)


def stripped(value: Decimal) -> Decimal:
    """The same number without trailing fractional zeros and without a positive exponent
    (``Decimal.normalize`` would round to the context's precision and write ``1E+2``)."""
    if not value.is_finite():
        return value
    if value.is_zero():
        return ZERO
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = list(digits)
    if exponent > 0:
        coefficient.extend([0] * exponent)
        exponent = 0
    while exponent < 0 and len(coefficient) > 1 and coefficient[-1] == 0:
        coefficient.pop()
        exponent += 1
    return Decimal((sign, tuple(coefficient), exponent))


def _unsigned_zero(value: Decimal) -> Decimal:
    return abs(value) if value.is_zero() else value


def plain(value: Decimal) -> str:
    """Fixed-point text without exponent or trailing zeros: ``100``, ``0.000002``, ``0``.
    (The text of ``stripped``, made from ``format`` in C: answers of the charge path use it.)"""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def plain_decimals(value: Any) -> Any:
    """``value`` with every Decimal in it as plain decimal text at its own places
    (``format(d, "f")``: never ``"0E-12"``, as ``str`` writes a zero at 12 places), in nested
    dicts and lists too."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {key: plain_decimals(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_decimals(item) for item in value]
    return value


_QUANTA = tuple(Decimal(1).scaleb(-places) for places in range(101))  # 1, 0.1, 0.01, …


def fixed_text(value: Decimal, places: int) -> str:
    """Exactly ``places`` decimal places, rounded half-up, without separators: ``10.50``
    at 2, ``0.000002000000`` at 12. (Every amount of an event's answer goes through it.)"""
    if type(value) is not Decimal:
        value = Decimal(value)
    quantum = _QUANTA[places] if 0 <= places <= 100 else Decimal(1).scaleb(-places)
    text = format(value.quantize(quantum, context=_EXACT), "f")
    return text[1:] if text[0] == "-" and text.strip("-0.") == "" else text


def number_text(value: Decimal, min_places: int = 0, *, grouping: bool = True) -> str:
    """Thousands separators (unless ``grouping`` is off: CSV cells) and at least
    ``min_places`` places, further places only as far as the value needs them; never
    rounds: ``19.00`` (at 2), ``0.000002``, ``800,000``."""
    value = Decimal(value)
    if not value.is_finite():
        return str(value)
    value = stripped(value)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(min_places, -exponent)
    return format(_unsigned_zero(value), f"{',' if grouping else ''}.{places}f")


def money_text(value: Decimal, decimals: int) -> str:
    """An amount at the currency's minor unit, rounded half-up, with thousands separators:
    ``1,234.50`` (USD), ``1,235`` (JPY), ``0.125`` (KWD)."""
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-decimals), context=_EXACT)
    return f"{_unsigned_zero(rounded):,.{decimals}f}"


def date_text(value: datetime) -> str:
    """The UTC date of ``value`` (a naive value is taken as UTC): ``2026-01-31``."""
    return f"{value.astimezone(UTC) if value.tzinfo else value:%Y-%m-%d}"


def period_text(start: datetime | None, end: datetime | None) -> str:
    """The days a half-open period ``[start, end)`` covers, the last one included:
    ``2026-01-01 – 2026-01-31`` for January; the start alone without an end or before it,
    nothing without a start."""
    if start is None:
        return ""
    if end is None or end <= start:
        return date_text(start)
    return f"{date_text(start)} – {date_text(end - timedelta(microseconds=1))}"


def bounds_text(start: datetime, end: datetime) -> str:
    """A period's two bounds as dates, the end exclusive: ``2026-01-01 – 2026-02-01``."""
    return f"{date_text(start)} – {date_text(end)}"
