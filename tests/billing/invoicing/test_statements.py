"""Monthly statements built from the ledger: they reconcile (opening + movements = closing =
the sum of entries up to the month's end), group usage by meter, and list the month's
invoices. Ledger activity is made with the wallet services only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from djmoney.money import Money

from billing.invoicing import invoice_finalize
from billing.invoicing.statements import statement_csv, statement_for
from core.errors import ValidationFailed
from tests.factories import AssetFactory, GrantFactory
from wallets.models import LedgerEntry
from wallets.services import (
    grant_void,
    grants_expire_due,
    wallet_adjust,
    wallet_draw,
    wallet_refund,
    wallet_transfer,
)

pytestmark = pytest.mark.django_db

D = Decimal


def at(year: int, month: int, day: int):
    return time_machine.travel(datetime(year, month, day, 12, tzinfo=UTC), tick=False)


def ledger_balance(wallet_id: int, asset: str, before: datetime) -> Decimal:
    total = LedgerEntry.objects.filter(
        account__wallet_id=wallet_id, asset_id=asset, created_at__lt=before
    ).aggregate(s=Sum("amount"))["s"]
    return total or D(0)


@pytest.fixture
def activity(customer, make_draft):
    """December: a 20 USD top-up. January: credits granted and used, USD used on two meters
    and without one, a promotional grant that expires, a refund, an adjustment, a void, and
    invoices. February: more usage."""
    AssetFactory(code="credits")
    w = customer.wallet_id
    with at(2025, 12, 15):
        GrantFactory(wallet=w, amount="20", grant_id="g-dec", cost=Money("20", "USD"))
        make_draft(customer, ["10"])  # a December invoice
    with at(2026, 1, 3):
        GrantFactory(wallet=w, asset="credits", amount="100", promotional=True)
    with at(2026, 1, 5):
        wallet_draw(
            wallet_id=w, asset="USD", amount="1.25", idempotency_key="d1", meter="llm_tokens"
        )
        wallet_draw(wallet_id=w, asset="USD", amount="0.75", idempotency_key="d2", meter="images")
        refunded = wallet_draw(
            wallet_id=w, asset="USD", amount="0.5", idempotency_key="d3", meter="llm_tokens"
        )
        wallet_draw(wallet_id=w, asset="USD", amount="0.000002", idempotency_key="d4")
        wallet_draw(wallet_id=w, asset="credits", amount="30", idempotency_key="d5", meter="images")
    with at(2026, 1, 6):
        GrantFactory(
            wallet=w, amount="5", promotional=True, expires_at=datetime(2026, 1, 20, tzinfo=UTC)
        )
        GrantFactory(wallet=w, amount="10", grant_id="g-jan")
    with at(2026, 1, 10):
        wallet_refund(transaction_id=refunded.transaction_id, idempotency_key="r1")
        january = invoice_finalize(invoice_id=make_draft(customer, ["100"]).pk)
    with at(2026, 1, 12):
        make_draft(customer, ["7"])  # still a draft: not on the statement
    with at(2026, 1, 21):
        grants_expire_due()
    with at(2026, 1, 25):
        wallet_adjust(
            wallet_id=w, asset="USD", amount="-1.00", reason="correction", idempotency_key="a1"
        )
        grant_void(grant_id="g-jan")
    with at(2026, 2, 2):
        wallet_draw(wallet_id=w, asset="USD", amount="2", idempotency_key="d6", meter="llm_tokens")
        invoice_finalize(invoice_id=make_draft(customer, ["3"]).pk)
    return january


def test_january_statement(customer, activity):
    statement = statement_for(customer=customer, year=2026, month=1)
    assert (statement.start, statement.end, statement.label) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
        "2026-01",
    )
    usd, credits = statement.assets
    assert (usd.asset, usd.opening, usd.closing) == ("USD", D(20), D("16.999998"))
    assert usd.movements == {
        "grants": D(15),
        "usage": D("-2.500002"),
        "reversals": D("0.5"),
        "expirations": D(-5),
        "adjustments": D(-1),
        "voids": D(-10),
    }
    assert [(u.meter, u.amount) for u in usd.usage] == [
        ("images", D("-0.75")),
        ("llm_tokens", D("-1.75")),
        ("", D("-0.000002")),
    ]
    assert (credits.asset, credits.opening, credits.closing) == ("credits", D(0), D(70))
    assert credits.movements == {"grants": D(100), "usage": D(-30)}
    assert statement.reconciles
    for asset in statement.assets:
        assert asset.opening + asset.total_movements == asset.closing
        assert asset.closing == ledger_balance(customer.wallet_id, asset.asset, statement.end)
        assert asset.opening == ledger_balance(customer.wallet_id, asset.asset, statement.start)
    assert [i.number for i in statement.invoices] == [activity.number] == ["INV-2026-000001"]


def test_months_chain_and_the_last_closing_is_the_wallet(customer, activity):
    december = statement_for(customer=customer, year=2025, month=12)
    january = statement_for(customer=customer, year=2026, month=1)
    february = statement_for(customer=customer, year=2026, month=2)
    assert [(a.asset, a.opening, a.closing) for a in december.assets] == [("USD", D(0), D(20))]
    assert december.assets[0].movements == {"grants": D(20)}
    assert [a.closing for a in january.assets] == [a.opening for a in february.assets]
    usd = february.assets[0]
    assert (usd.movements, usd.closing) == ({"usage": D(-2)}, D("14.999998"))
    assert usd.closing == customer.wallet.accounts.get(asset_id="USD").posted
    assert [i.number for i in february.invoices] == ["INV-2026-000002"]
    assert [i.number for i in december.invoices] == []  # December's is still a draft


def test_statement_csv(customer, activity):
    csv = statement_csv(statement_for(customer=customer, year=2026, month=1))
    assert csv.split("\r\n") == [
        "kind,asset,item,meter,status,date,amount",
        "opening,USD,Opening balance,,,2026-01-01,20.00",
        "grants,USD,Grants in,,,,15.00",
        "usage,USD,Usage out,images,,,-0.75",
        "usage,USD,Usage out,llm_tokens,,,-1.75",
        "usage,USD,Usage out,,,,-0.000002",
        "expirations,USD,Expirations,,,,-5.00",
        "reversals,USD,Reversals and refunds,,,,0.50",
        "voids,USD,Voided grants,,,,-10.00",
        "adjustments,USD,Adjustments,,,,-1.00",
        "closing,USD,Closing balance,,,2026-01-31,16.999998",
        "opening,credits,Opening balance,,,2026-01-01,0",
        "grants,credits,Grants in,,,,100",
        "usage,credits,Usage out,images,,,-30",
        "closing,credits,Closing balance,,,2026-01-31,70",
        "invoice,USD,INV-2026-000001,,finalized,2026-01-10,119.00",
        "",
    ]


def test_transfers_show_on_both_statements(customer, make_customer):
    other = make_customer("globex")
    with at(2026, 1, 2):
        GrantFactory(wallet=customer.wallet_id, amount="10")
    with at(2026, 1, 3):
        wallet_transfer(
            from_wallet_id=customer.wallet_id,
            to_wallet_id=other.wallet_id,
            asset="USD",
            amount="4",
            idempotency_key="t1",
        )
    sender = statement_for(customer=customer, year=2026, month=1).assets[0]
    receiver = statement_for(customer=other, year=2026, month=1).assets[0]
    assert (sender.movements, sender.closing) == ({"grants": D(10), "transfers": D(-4)}, D(6))
    assert (receiver.movements, receiver.closing) == ({"grants": D(4)}, D(4))


def test_a_quiet_month_has_no_assets(customer):
    statement = statement_for(customer=customer, year=2026, month=1)
    assert (statement.assets, statement.invoices) == ([], [])
    assert statement_csv(statement) == "kind,asset,item,meter,status,date,amount\r\n"


def test_meter_names_cannot_become_spreadsheet_formulas(customer):
    with at(2026, 1, 2):
        GrantFactory(wallet=customer.wallet_id, amount="10")
        wallet_draw(
            wallet_id=customer.wallet_id,
            asset="USD",
            amount="1",
            idempotency_key="x",
            meter='=HYPERLINK("http://evil")',
        )
    csv = statement_csv(statement_for(customer=customer, year=2026, month=1))
    assert """usage,USD,Usage out,"'=HYPERLINK(""http://evil"")",,,-1.00""" in csv.split("\r\n")


@pytest.mark.parametrize(("year", "month"), [(2026, 0), (2026, 13), (1999, 1), ("2026", 1)])
def test_bad_months_are_refused(customer, year, month):
    with pytest.raises(ValidationFailed):
        statement_for(customer=customer, year=year, month=month)
