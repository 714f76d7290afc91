from __future__ import annotations

from decimal import Decimal

import pytest

from billing.admin.display import period_text
from core.admin.formatting import amount_html, format_amount
from wallets.models import Asset


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (Decimal("19.000000000000"), 2, "19.00"),
        (Decimal("0.000002000000"), 2, "0.000002"),
        (Decimal("0.000002000000"), 0, "0.000002"),
        (Decimal("800000.000000000000"), 0, "800,000"),
        (Decimal("1E+6"), 0, "1,000,000"),
        (Decimal("-1.5"), 2, "-1.50"),
        (Decimal("0E-12"), 3, "0.000"),
        (Decimal("1234567.123456789012"), 2, "1,234,567.123456789012"),
        (Decimal("49"), 0, "49"),
        (None, 2, "—"),
    ],
)
def test_format_amount(value, decimals, text):
    assert format_amount(value, decimals) == text


def test_amount_html_carries_the_asset_code():
    usd = Asset(code="USD", decimals=2)
    assert str(amount_html(Decimal("19"), usd)) == (
        '<span style="white-space:nowrap">19.00 USD</span>'
    )
    assert amount_html(None, usd) == "—"
    evil = Asset(code="<b>", decimals=0)
    assert "&lt;b&gt;" in str(amount_html(Decimal("1"), evil))


def test_period_text():
    from datetime import UTC, datetime

    assert period_text(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)) == (
        "2026-01-01 – 2026-01-31"
    )
    assert period_text(None, None) == "—"
