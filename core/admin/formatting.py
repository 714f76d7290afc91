"""Amounts and times as the admin pages show them: exact decimals with thousands separators
(never a float, never rounded), an asset's code beside its amount, times in UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.text import number_text

EMPTY = "—"


class Unit(Protocol):
    """What an amount is counted in (an asset): its code and its decimal places."""

    code: str
    decimals: int


def format_amount(value: Decimal | None, decimals: int = 0) -> str:
    """``value`` as ``core.text.number_text`` writes it, ``EMPTY`` for none: thousands
    separators and at least ``decimals`` places, further places only as far as the value needs
    them (ledger amounts carry 12): 19 USD → ``19.00``, 0.000002000000 → ``0.000002``, 800000
    tokens → ``800,000``. Never rounds, never a float."""
    return EMPTY if value is None else number_text(value, decimals)


def amount_html(value: Decimal | None, asset: Unit | None) -> SafeString | str:
    """An amount with its asset code, e.g. ``19.00 USD``, kept on one line."""
    if value is None:
        return EMPTY
    if asset is None:
        return format_amount(value)
    return format_html(
        '<span style="white-space:nowrap">{} {}</span>',
        format_amount(value, asset.decimals),
        asset.code,
    )


def datetime_text(value: datetime | None) -> str:
    return EMPTY if value is None else f"{value:%Y-%m-%d %H:%M} UTC"
