"""Invoices and statements as HTML and PDF: amounts formatted from Decimal at the currency's
minor unit, seller details from settings, and text of any script rendered without failing."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from billing.invoicing import credit_note_create, invoice_finalize, invoice_mark_paid
from billing.invoicing.documents import (
    core_font_text,
    exact_text,
    invoice_html,
    invoice_pdf,
    money_text,
    statement_html,
    statement_pdf,
)
from billing.invoicing.statements import statement_for
from tests.factories import GrantFactory
from wallets.services import wallet_draw

from .conftest import T0, line

D = Decimal


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (D("1234.5"), 2, "1,234.50"),
        (D("1234.5"), 0, "1,235"),  # half-up
        (D("0.1245"), 3, "0.125"),
        (D("-20.645"), 2, "-20.65"),
        (D("-0.001"), 2, "0.00"),  # never "-0.00"
        (D("1000000"), 2, "1,000,000.00"),
        (D("123456789012345678.99"), 2, "123,456,789,012,345,678.99"),  # no float on the way
    ],
)
def test_money_text(value, decimals, text):
    assert money_text(value, decimals) == text


def test_exact_text():
    assert exact_text(D("0.000002000000"), 2) == "0.000002"
    assert exact_text(D("20"), 2) == "20.00"
    assert exact_text(D("1500000")) == "1,500,000"
    assert exact_text(None) == ""


@pytest.mark.parametrize(
    ("text", "printable"),
    [
        ("Zoë Müller €5 – “ok”", "Zoë Müller €5 – “ok”"),
        ("Łódź", "Lódz"),
        ("Dvořák", "Dvorák"),
        ("株式会社", "????"),
        ("Ａｃｍｅ", "Acme"),
        ("a\x00b\nc", "a b c"),
        ("≥ 10 → ok", ">= 10 -> ok"),
        ("😀", "?"),
    ],
)
def test_core_font_text(text, printable):
    assert core_font_text(text) == printable
    printable.encode("cp1252")  # what the core font can show


def page_text(pdf: bytes) -> bytes:
    """The content streams of a PDF rendered with ``compress=False``."""
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    return b"".join(re.findall(rb"(?<!end)stream\n(.*?)\nendstream", pdf, re.S))


@pytest.mark.django_db
def test_invoice_pdf(make_customer, make_draft):
    customer = make_customer("zoe", name="Zoë Müller 株式会社", tax_rate="19")
    invoice = invoice_finalize(
        invoice_id=make_draft(customer, [line("1234.5", "Pro plan <b>bold</b>")]).pk, now=T0
    )
    pdf = invoice_pdf(invoice)  # compressed, as served
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"/FlateDecode" in pdf
    assert b"/Title (Invoice INV-2026-000001)" in pdf
    text = page_text(invoice_pdf(invoice, compress=False))
    for expected in (
        "INV-2026-000001",
        "Zoë Müller ????",
        "1,234.50",
        "234.56",
        "1,469.06",
        "Billfold Demo Inc.",
        "Pro plan <b>bold</b>",
        r"Tax \(19 %\)",  # parentheses are escaped in PDF strings
    ):
        assert expected.encode("cp1252") in text, expected


@pytest.mark.django_db
def test_draft_credit_note_and_paid_pdfs(customer, make_draft):
    draft = make_draft(customer, ["10"])
    assert b"DRAFT" in page_text(invoice_pdf(draft, compress=False))
    invoice = invoice_finalize(invoice_id=draft.pk, now=T0)
    note = credit_note_create(
        invoice_id=invoice.pk, lines=[{"description": "Refund", "amount": "2.5"}], reason="r"
    )
    text = page_text(invoice_pdf(note, compress=False))
    for expected in (
        b"Credit note CN-2026-000001",
        b"Credit note for: INV-2026-000001",
        b"-2.50",
        b"-2.98",
    ):
        assert expected in text
    invoice_mark_paid(invoice_id=invoice.pk, reference="wire 9")
    invoice.refresh_from_db()
    assert rb"\(ref. wire 9\)" in page_text(invoice_pdf(invoice, compress=False))


@pytest.mark.django_db
def test_invoice_pdf_with_a_unicode_font(make_customer, make_draft, settings):
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font.is_file():
        pytest.skip("no system TrueType font to embed")
    settings.BILLFOLD = {**settings.BILLFOLD, "PDF_FONT": str(font)}
    customer = make_customer("lodz", name="Łódź Ωmega")
    pdf = invoice_pdf(make_draft(customer))
    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf and b"DejaVuSans" in pdf


@pytest.mark.django_db
def test_invoice_html(make_customer, make_draft, settings):
    settings.BILLFOLD = {
        **settings.BILLFOLD,
        "SELLER": {
            "name": "Seller & Co",
            "address": "1 Main St",
            "email": "ar@seller.test",
            "tax_id": "DE123",
        },
    }
    customer = make_customer("kw", currency="KWD", tax_rate="5", name="株式会社 <script>")
    draft = make_draft(customer, ["1.2345", line("10.0005", "Setup <i>fee</i>")])
    html = invoice_html(draft)
    assert "<title>Invoice DRAFT</title>" in html
    assert "Seller &amp; Co" in html and "Tax id DE123" in html
    assert "株式会社 &lt;script&gt;" in html  # escaped, exact text
    assert "Setup &lt;i&gt;fee&lt;/i&gt;" in html
    for amount in ("1.235", "10.001", "11.236", "0.562", "11.798"):
        assert f'class="num">{amount}</td>' in html, amount
    assert "Tax (5 %)" in html
    assert "http" not in html.replace("http-equiv", "")  # no external assets
    final = invoice_finalize(invoice_id=draft.pk, now=T0)
    assert "<title>Invoice INV-2026-000001</title>" in invoice_html(final)


@pytest.mark.django_db
def test_statement_documents(customer, time_machine):
    time_machine.move_to(T0, tick=False)
    GrantFactory(wallet=customer.wallet_id, amount="10")
    wallet_draw(
        wallet_id=customer.wallet_id,
        asset="USD",
        amount="1.5",
        idempotency_key="d",
        meter="llm_tokens",
    )
    statement = statement_for(customer=customer, year=2026, month=3)
    html = statement_html(statement)
    assert "Statement 2026-03" in html
    assert "2026-03-01 – 2026-03-31" in html
    for row in ("Opening balance", "Grants in", "llm_tokens", "-1.50", "8.50", "10.00"):
        assert row in html, row
    text = page_text(statement_pdf(statement, compress=False))
    for expected in (b"Statement 2026-03", b"llm_tokens", b"-1.50", b"8.50"):
        assert expected in text
