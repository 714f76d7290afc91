"""Invoices and statements as documents: HTML (``billing/invoice.html``,
``billing/statement.html``) and PDF (fpdf2).

Amounts are formatted here from ``Decimal`` (never a float): invoice amounts at the currency's
minor unit (JPY 0, USD 2, KWD 3), with thousands separators; quantities and unit prices as
exact as they are (0.000002), at least to the minor unit.

**PDF fonts.** The PDFs use the PDF core font Helvetica (no file to ship or find) with the
Windows-1252 character set, which covers Western European text ("Zoë", "Müller", "€",
curly quotes, dashes). Characters outside it are transliterated where Unicode gives a base
letter or a plain reading ("Łódź" → "Lódz", "Dvořák" → "Dvorák", "≥" → ">=", full-width
"Ａ" → "A") and otherwise replaced by "?" (a Japanese name such as "株式会社" prints as
"????"); control characters become spaces, so no input can make rendering fail. The HTML
document always shows the exact text. A deployment that needs other scripts in its PDFs can
point ``BILLFOLD["PDF_FONT"]`` (and optionally ``BILLFOLD["PDF_FONT_BOLD"]``) at a Unicode
TrueType font (e.g. Noto Sans CJK): it is then embedded and text is written unchanged. No
TTF ships with a Python package Billfold depends on, so this stays opt-in.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from fpdf import FPDF
from fpdf.fonts import FontFace

from billing.invoicing.statements import CATEGORY_LABELS, Statement
from billing.models import Invoice
from core import text as core_text

logger = logging.getLogger(__name__)

# --- numbers and dates ----------------------------------------------------------------------------


def money_text(value: Decimal | None, decimals: int) -> str:
    """An amount at the currency's minor unit (``core.text.money_text``); blank for none."""
    return "" if value is None else core_text.money_text(value, decimals)


def exact_text(value: Decimal | None, decimals: int = 0) -> str:
    """A quantity or unit price as exact as it is, at least ``decimals`` places
    (``core.text.number_text``); blank for none."""
    return "" if value is None else core_text.number_text(value, decimals)


def date_text(value: datetime | None) -> str:
    return "" if value is None else core_text.date_text(value)


# --- the document model shared by HTML and PDF ------------------------------------------------


@dataclass(frozen=True)
class DocLine:
    description: str
    detail: str
    quantity: str
    unit_price: str
    amount: str


def invoice_document(invoice: Invoice) -> dict[str, Any]:
    """Everything an invoice shows, as text: the context of ``billing/invoice.html`` and the
    content of its PDF."""
    currency = invoice.currency
    d = currency.decimals
    credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    lines = [
        DocLine(
            description=line.description,
            detail=" · ".join(
                part
                for part in (
                    line.get_kind_display(),
                    line.meter.code if line.meter_id else "",
                    core_text.period_text(line.period_start, line.period_end),
                )
                if part
            ),
            quantity=exact_text(line.quantity),
            unit_price=exact_text(line.unit_price, d),
            amount=money_text(line.amount, d),
        )
        for line in invoice.lines.all()
    ]
    customer = invoice.customer
    return {
        "invoice": invoice,
        "title": "Credit note" if credit else "Invoice",
        "number": invoice.number or "DRAFT",
        "is_draft": invoice.status == Invoice.Status.DRAFT,
        "status": invoice.get_status_display(),
        "status_code": invoice.status,
        "seller": dict(settings.BILLFOLD.get("SELLER", {})),
        "customer": {
            "name": customer.name,
            "email": customer.email,
            "external_id": customer.external_id,
        },
        "currency": currency.code,
        "issued": date_text(invoice.issued_at),
        "due": date_text(invoice.due_at),
        "period": core_text.period_text(invoice.period_start, invoice.period_end),
        "lines": lines,
        "subtotal": money_text(invoice.subtotal, d),
        "tax_rate": core_text.plain(invoice.tax_rate),
        "tax": money_text(invoice.tax, d),
        "total": money_text(invoice.total, d),
        "paid": date_text(invoice.paid_at),
        "payment_reference": invoice.payment_reference,
        "voided": date_text(invoice.voided_at),
        "credit_note_for": (invoice.credit_note_for.number if invoice.credit_note_for_id else ""),
        "reason": invoice.reason,
    }


def statement_document(statement: Statement) -> dict[str, Any]:
    """Everything a statement shows, as text (``billing/statement.html`` and its PDF)."""
    assets = []
    for asset in statement.assets:
        d = asset.decimals
        assets.append(
            {
                "code": asset.asset,
                "name": asset.name,
                "opening": exact_text(asset.opening, d),
                "closing": exact_text(asset.closing, d),
                "rows": [
                    {
                        "label": label,
                        "meter": meter or ("(no meter)" if category == "usage" else ""),
                        "amount": exact_text(amount, d),
                    }
                    for category, label, meter, amount in asset.rows()
                ],
            }
        )
    invoices = [
        {
            "number": invoice.number or "",
            "kind": invoice.get_kind_display(),
            "status": invoice.get_status_display(),
            "issued": date_text(invoice.issued_at),
            "due": date_text(invoice.due_at),
            "total": money_text(invoice.total, invoice.currency.decimals),
            "currency": invoice.currency_id,
        }
        for invoice in statement.invoices
    ]
    customer = statement.customer
    return {
        "statement": statement,
        "label": statement.label,
        "period": core_text.period_text(statement.start, statement.end),
        "seller": dict(settings.BILLFOLD.get("SELLER", {})),
        "customer": {
            "name": customer.name,
            "email": customer.email,
            "external_id": customer.external_id,
        },
        "assets": assets,
        "invoices": invoices,
        "generated": date_text(statement.generated_at),
        "categories": CATEGORY_LABELS,
    }


# --- HTML -----------------------------------------------------------------------------------------


def invoice_html(invoice: Invoice) -> str:
    return render_to_string("billing/invoice.html", invoice_document(invoice))


def statement_html(statement: Statement) -> str:
    return render_to_string("billing/statement.html", statement_document(statement))


# --- PDF ------------------------------------------------------------------------------------------

# characters Windows-1252 lacks that have a plain reading
_READINGS = {
    "→": "->",
    "←": "<-",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "×": "x",
    "−": "-",
    "‐": "-",
    "‑": "-",
    "∞": "inf",
    "✓": "v",
    # letters with a stroke or without a dot have no Unicode decomposition
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ħ": "H",
    "ħ": "h",
    "ı": "i",
    "Ŧ": "T",
    "ŧ": "t",
}


def _encodable(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def core_font_text(text: str) -> str:
    """``text`` reduced to what the PDF core fonts can show (Windows-1252): transliterated
    where Unicode decomposes a character to a base letter, "?" where nothing fits, control
    characters as spaces. Never raises."""
    out: list[str] = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(" ")
        elif _encodable(char):
            out.append(char)
        elif char in _READINGS:
            out.append(_READINGS[char])
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(base if base and all(_encodable(c) for c in base) else "?")
    return "".join(out)


class _Pdf(FPDF):
    """An A4 page with the chosen font; ``text()`` makes any string printable with it."""

    def __init__(self, *, title: str, created: datetime | None, compress: bool) -> None:
        super().__init__(format="A4")
        self.set_compression(compress)
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(auto=True, margin=16)
        self.unicode_font = self._load_font()
        self.family = "billfold" if self.unicode_font else "helvetica"
        if not self.unicode_font:
            self.core_fonts_encoding = "cp1252"
        self.set_title(self.text(title))
        self.set_creator("Billfold")
        self.set_producer("Billfold")
        if created is not None:
            self.set_creation_date(created)
        self.alias_nb_pages()
        self.add_page()

    def _load_font(self) -> bool:
        options = settings.BILLFOLD
        regular = options.get("PDF_FONT")
        if not regular:
            return False
        bold = options.get("PDF_FONT_BOLD") or regular
        if not (Path(regular).is_file() and Path(bold).is_file()):
            logger.warning("BILLFOLD PDF_FONT %s not found; using the core font", regular)
            return False
        self.add_font("billfold", "", regular)
        self.add_font("billfold", "B", bold)
        return True

    def text(self, value: Any) -> str:
        value = "" if value is None else str(value)
        return value if self.unicode_font else core_font_text(value)

    def use(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def line_of(self, value: Any, size: float = 9, bold: bool = False, align: str = "L") -> None:
        self.use(size, bold)
        self.multi_cell(0, size * 0.5, self.text(value), align=align, new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-12)
        self.use(7)
        self.set_text_color(110)
        self.cell(0, 5, f"Page {self.page_no()} / {{nb}}", align="R")
        self.set_text_color(0)


def _party_block(pdf: _Pdf, heading: str, rows: list[str]) -> None:
    pdf.line_of(heading, 8, bold=True)
    for row in rows:
        if row:
            pdf.line_of(row, 9)


def _table(
    pdf: _Pdf,
    headings: tuple[str, ...],
    rows: list[tuple[str, ...]],
    widths: tuple[int, ...],
    align: tuple[str, ...] | None = None,
) -> None:
    """A table; a cell's lines are separated by "\\n" (each made printable on its own)."""
    pdf.use(9)
    with pdf.table(
        col_widths=widths,
        text_align=align or ("LEFT",) + ("RIGHT",) * (len(headings) - 1),
        borders_layout="HORIZONTAL_LINES",
        headings_style=FontFace(emphasis="BOLD", fill_color=235),
        line_height=5,
        padding=1.2,
    ) as table:
        for values in (headings, *rows):
            row = table.row()
            for value in values:
                row.cell("\n".join(pdf.text(part) for part in str(value).split("\n")))


def _totals(pdf: _Pdf, rows: list[tuple[str, str, bool]]) -> None:
    for label, value, bold in rows:
        pdf.use(10 if bold else 9, bold)
        pdf.cell(130, 6, pdf.text(label), align="R")
        pdf.cell(0, 6, pdf.text(value), align="R", new_x="LMARGIN", new_y="NEXT")


def invoice_pdf(invoice: Invoice, *, compress: bool = True) -> bytes:
    """The invoice as a PDF: seller, customer, number (or DRAFT), dates, period, lines and
    totals. ``compress=False`` leaves page streams readable (tests look for text in them)."""
    doc = invoice_document(invoice)
    created = invoice.finalized_at or invoice.issued_at or invoice.created_at
    pdf = _Pdf(title=f"{doc['title']} {doc['number']}", created=created, compress=compress)
    seller = doc["seller"]
    pdf.line_of(seller.get("name", ""), 14, bold=True)
    for key in ("address", "email"):
        if seller.get(key):
            pdf.line_of(seller[key], 9)
    if seller.get("tax_id"):
        pdf.line_of(f"Tax id {seller['tax_id']}", 9)
    pdf.ln(4)
    pdf.line_of(f"{doc['title']} {doc['number']}", 16, bold=True)
    if doc["status_code"] in ("void", "paid"):  # a draft says DRAFT in place of its number
        state = doc["status"].upper()
        if doc["status_code"] == "paid" and doc["paid"]:
            state += f" on {doc['paid']} (ref. {doc['payment_reference']})"
        if doc["status_code"] == "void" and doc["voided"]:
            state += f" on {doc['voided']}"
        pdf.line_of(state, 10, bold=True)
    facts = [
        ("Issued", doc["issued"]),
        ("Due", doc["due"]),
        ("Period", doc["period"]),
        ("Credit note for", doc["credit_note_for"]),
        ("Reason", doc["reason"]),
        ("Currency", doc["currency"]),
    ]
    for label, value in facts:
        if value:
            pdf.line_of(f"{label}: {value}", 9)
    pdf.ln(3)
    customer = doc["customer"]
    _party_block(
        pdf, "BILL TO", [customer["name"], customer["email"], f"Customer {customer['external_id']}"]
    )
    pdf.ln(4)
    rows = [
        (
            f"{line.description}\n{line.detail}" if line.detail else line.description,
            line.quantity,
            line.unit_price,
            line.amount,
        )
        for line in doc["lines"]
    ]
    _table(
        pdf,
        ("Description", "Quantity", "Unit price", f"Amount ({doc['currency']})"),
        rows,
        (86, 28, 30, 30),
    )
    pdf.ln(3)
    _totals(
        pdf,
        [
            ("Subtotal", doc["subtotal"], False),
            (f"Tax ({doc['tax_rate']} %)", doc["tax"], False),
            (f"Total {doc['currency']}", doc["total"], True),
        ],
    )
    return bytes(pdf.output())


def statement_pdf(statement: Statement, *, compress: bool = True) -> bytes:
    """The monthly statement as a PDF: per asset its opening balance, movements (usage by
    meter) and closing balance, then the month's invoices."""
    doc = statement_document(statement)
    pdf = _Pdf(
        title=f"Statement {doc['label']} {statement.customer.external_id}",
        created=statement.end,
        compress=compress,
    )
    seller = doc["seller"]
    pdf.line_of(seller.get("name", ""), 14, bold=True)
    if seller.get("address"):
        pdf.line_of(seller["address"], 9)
    pdf.ln(4)
    pdf.line_of(f"Statement {doc['label']}", 16, bold=True)
    pdf.line_of(f"Period: {doc['period']} (UTC)", 9)
    pdf.ln(2)
    customer = doc["customer"]
    _party_block(
        pdf,
        "CUSTOMER",
        [customer["name"], customer["email"], f"Customer {customer['external_id']}"],
    )
    if not doc["assets"]:
        pdf.ln(4)
        pdf.line_of("No balances and no movements in this month.", 9)
    for asset in doc["assets"]:
        pdf.ln(5)
        pdf.line_of(f"{asset['code']} — {asset['name']}", 11, bold=True)
        pdf.ln(1)
        rows = [("Opening balance", "", asset["opening"])]
        rows += [(row["label"], row["meter"], row["amount"]) for row in asset["rows"]]
        rows.append(("Closing balance", "", asset["closing"]))
        _table(pdf, ("", "Meter", "Amount"), rows, (90, 44, 40), ("LEFT", "LEFT", "RIGHT"))
    pdf.ln(5)
    pdf.line_of("Invoices of the month", 11, bold=True)
    pdf.ln(1)
    if doc["invoices"]:
        _table(
            pdf,
            ("Number", "Status", "Issued", "Total"),
            [
                (i["number"], i["status"], i["issued"], f"{i['total']} {i['currency']}")
                for i in doc["invoices"]
            ],
            (60, 36, 36, 42),
            ("LEFT", "LEFT", "LEFT", "RIGHT"),
        )
    else:
        pdf.line_of("None.", 9)
    return bytes(pdf.output())
