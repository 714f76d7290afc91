"""Invoices and monthly statements over the API (docs/api.md "Invoices"): read them, download their
PDFs, finalize, void, mark paid, credit. Reads need the ``read`` scope, actions ``manage``.

Amounts of invoices are strings at the currency's minor unit (``"20.65"``, ``"1235"`` JPY,
``"1.235"`` KWD); statement amounts come from the ledger and keep its 12 places."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from billing.api.fields import CurrencyCode, DecimalString, decimal_str
from billing.api.idempotency import idempotency_key, idempotent
from billing.invoicing import (
    credit_note_create,
    invoice_finalize,
    invoice_mark_paid,
    invoice_pdf,
    invoice_void,
    statement_pdf,
)
from billing.invoicing.statements import (
    ADJUSTMENTS,
    EXPIRATIONS,
    GRANTS,
    OTHER,
    REVERSALS,
    TRANSFERS,
    VOIDS,
    Statement,
    statement_csv,
    statement_for,
)
from billing.models import Invoice, InvoiceLine
from billing.selectors.customers import customer_get
from billing.selectors.invoices import invoice_get, invoice_list
from core.errors import NotFound, ValidationFailed
from core.text import plain

# --- representation -------------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    """An invoice as docs/api.md shows it, plus its kind, tax rate, credited invoice, payment and
    lifecycle times. Load it with ``invoice_get``/``invoice_list`` (lines prefetched)."""
    places = invoice.currency.decimals

    def money(value) -> str:
        return decimal_str(value, places)

    return {
        "id": invoice.pk,
        "number": invoice.number,
        "customer": invoice.customer.external_id,
        "kind": invoice.kind,
        "status": invoice.status,
        "currency": invoice.currency_id,
        "period": {"start": _iso(invoice.period_start), "end": _iso(invoice.period_end)},
        "lines": [
            {
                "description": line.description,
                "kind": line.kind,
                "meter": line.meter.code if line.meter_id else None,
                "quantity": plain(line.quantity) if line.quantity is not None else None,
                "unit_price": plain(line.unit_price) if line.unit_price is not None else None,
                "amount": money(line.amount),
            }
            for line in invoice.lines.all()
        ],
        "subtotal": money(invoice.subtotal),
        "tax_rate": plain(invoice.tax_rate),
        "tax": money(invoice.tax),
        "total": money(invoice.total),
        "issued_at": _iso(invoice.issued_at),
        "due_at": _iso(invoice.due_at),
        "finalized_at": _iso(invoice.finalized_at),
        "paid_at": _iso(invoice.paid_at),
        "payment_reference": invoice.payment_reference,
        "voided_at": _iso(invoice.voided_at),
        "credit_note_for": invoice.credit_note_for_id,
        "reason": invoice.reason,
    }


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)


class InvoiceLineSerializer(serializers.Serializer):
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=InvoiceLine.Kind.choices)
    meter = serializers.CharField(allow_null=True)
    quantity = DecimalString(allow_zero=True, allow_null=True)
    unit_price = DecimalString(signed=True, allow_null=True)
    amount = DecimalString(signed=True)


class InvoiceSerializer(serializers.Serializer):
    """Output shape of an invoice (for the schema)."""

    id = serializers.IntegerField()
    number = serializers.CharField(allow_null=True)
    customer = serializers.CharField()
    kind = serializers.ChoiceField(choices=Invoice.Kind.choices)
    status = serializers.ChoiceField(choices=Invoice.Status.choices)
    currency = CurrencyCode()
    period = PeriodSerializer()
    lines = InvoiceLineSerializer(many=True)
    subtotal = DecimalString(signed=True)
    tax_rate = DecimalString(allow_zero=True)
    tax = DecimalString(signed=True)
    total = DecimalString(signed=True)
    issued_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    finalized_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    payment_reference = serializers.CharField(allow_blank=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    credit_note_for = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)


class MarkPaidSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=255)


class CreditLineInputSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=500)
    amount = DecimalString()


class CreditNoteInputSerializer(serializers.Serializer):
    lines = serializers.ListField(child=CreditLineInputSerializer(), min_length=1, max_length=100)
    reason = serializers.CharField(max_length=500)


def _read(invoice: Invoice) -> dict[str, Any]:
    return invoice_json(invoice_get(invoice_id=invoice.pk))


class FirstRendererNegotiation(BaseContentNegotiation):
    """Always the view's first renderer (JSON): these views answer PDF or CSV bodies
    themselves, and errors stay problem+json whatever ``Accept`` or ``?format=`` says."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120] or "document"


# --- invoices -----------------------------------------------------------------------------------


class InvoiceListView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer

    @extend_schema(
        operation_id="invoices_list",
        parameters=[
            OpenApiParameter("customer", str, required=False, description="external_id"),
            OpenApiParameter("status", str, required=False, enum=Invoice.Status.values),
        ],
        responses=InvoiceSerializer(many=True),
    )
    def get(self, request):
        params = request.query_params
        customer = None
        if "customer" in params:
            customer = customer_get(external_id=params["customer"])
        query = invoice_list(customer=customer, status=params.get("status"))
        page = self.paginate_queryset(query)
        return self.get_paginated_response([invoice_json(i) for i in page])


class InvoiceDetailView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer
    pagination_class = None

    @extend_schema(operation_id="invoices_retrieve", responses=InvoiceSerializer)
    def get(self, request, invoice_id: str):
        return Response(invoice_json(invoice_get(invoice_id=invoice_id)))


class InvoicePdfView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer
    pagination_class = None
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        operation_id="invoices_pdf",
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, "The PDF.")},
    )
    def get(self, request, invoice_id: str):
        invoice = invoice_get(invoice_id=invoice_id)
        name = _filename(invoice.number or f"draft-{invoice.pk}")
        return HttpResponse(
            invoice_pdf(invoice),
            content_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
        )


class InvoiceFinalizeView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer

    @extend_schema(operation_id="invoices_finalize", request=None, responses=InvoiceSerializer)
    def post(self, request, invoice_id: str):
        def run() -> Response:
            return Response(_read(invoice_finalize(invoice_id=invoice_id)))

        return idempotent(
            request, scope="invoice-finalize", key=idempotency_key(request), handler=run
        )


class InvoiceVoidView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer

    @extend_schema(operation_id="invoices_void", request=None, responses=InvoiceSerializer)
    def post(self, request, invoice_id: str):
        def run() -> Response:
            return Response(_read(invoice_void(invoice_id=invoice_id)))

        return idempotent(request, scope="invoice-void", key=idempotency_key(request), handler=run)


class InvoiceMarkPaidView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer

    @extend_schema(
        operation_id="invoices_mark_paid", request=MarkPaidSerializer, responses=InvoiceSerializer
    )
    def post(self, request, invoice_id: str):
        def run() -> Response:
            invoice_get(invoice_id=invoice_id)  # an unknown invoice is a 404 before the body
            data = MarkPaidSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            invoice = invoice_mark_paid(
                invoice_id=invoice_id, reference=data.validated_data["reference"]
            )
            return Response(_read(invoice))

        return idempotent(
            request, scope="invoice-mark-paid", key=idempotency_key(request), handler=run
        )


class InvoiceCreditNotesView(generics.GenericAPIView):
    serializer_class = InvoiceSerializer

    @extend_schema(
        operation_id="invoices_credit_notes_create",
        request=CreditNoteInputSerializer,
        responses={201: InvoiceSerializer},
    )
    def post(self, request, invoice_id: str):
        def run() -> Response:
            invoice_get(invoice_id=invoice_id)
            data = CreditNoteInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            note = credit_note_create(
                invoice_id=invoice_id,
                lines=[dict(line) for line in values["lines"]],
                reason=values["reason"],
            )
            return Response(_read(note), status=status.HTTP_201_CREATED)

        return idempotent(
            request, scope="invoice-credit-note", key=idempotency_key(request), handler=run
        )


# --- statements ---------------------------------------------------------------------------------

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
FORMATS = ("json", "csv", "pdf")


class MeterAmountSerializer(serializers.Serializer):
    meter = serializers.CharField()
    amount = DecimalString(signed=True)


class StatementAssetSerializer(serializers.Serializer):
    asset = serializers.CharField()
    opening = DecimalString(signed=True)
    grants = DecimalString(signed=True)
    usage = MeterAmountSerializer(many=True)
    usage_total = DecimalString(signed=True)
    expirations = DecimalString(signed=True)
    reversals = DecimalString(signed=True)
    voids = DecimalString(signed=True)
    adjustments = DecimalString(signed=True)
    transfers = DecimalString(signed=True)
    other = DecimalString(signed=True)
    closing = DecimalString(signed=True)


class StatementInvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    total = DecimalString(signed=True)
    issued_at = serializers.DateTimeField()


class StatementSerializer(serializers.Serializer):
    customer = serializers.CharField()
    month = serializers.CharField()
    period = PeriodSerializer()
    assets = StatementAssetSerializer(many=True)
    invoices = StatementInvoiceSerializer(many=True)


def statement_json(statement: Statement) -> dict[str, Any]:
    """Movements are signed as in the ledger (into the wallet positive); for every asset
    ``opening`` + the movements = ``closing``."""
    assets = []
    for asset in statement.assets:
        usage = [{"meter": u.meter, "amount": decimal_str(u.amount)} for u in asset.usage]
        assets.append(
            {
                "asset": asset.asset,
                "opening": decimal_str(asset.opening),
                "grants": decimal_str(asset.movement(GRANTS)),
                "usage": usage,
                "usage_total": decimal_str(sum((u.amount for u in asset.usage), Decimal(0))),
                "expirations": decimal_str(asset.movement(EXPIRATIONS)),
                "reversals": decimal_str(asset.movement(REVERSALS)),
                "voids": decimal_str(asset.movement(VOIDS)),
                "adjustments": decimal_str(asset.movement(ADJUSTMENTS)),
                "transfers": decimal_str(asset.movement(TRANSFERS)),
                "other": decimal_str(asset.movement(OTHER)),
                "closing": decimal_str(asset.closing),
            }
        )
    return {
        "customer": statement.customer.external_id,
        "month": statement.label,
        "period": {"start": statement.start.isoformat(), "end": statement.end.isoformat()},
        "assets": assets,
        "invoices": [
            {
                "id": invoice.pk,
                "number": invoice.number,
                "kind": invoice.kind,
                "status": invoice.status,
                "currency": invoice.currency_id,
                "total": decimal_str(invoice.total, invoice.currency.decimals),
                "issued_at": _iso(invoice.issued_at),
            }
            for invoice in statement.invoices
        ],
    }


class CustomerStatementView(generics.GenericAPIView):
    serializer_class = StatementSerializer
    pagination_class = None
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        operation_id="customers_statements_retrieve",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                required=False,
                enum=list(FORMATS),
                description="json (default), csv or pdf.",
            )
        ],
        responses={
            (200, "application/json"): StatementSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, "The statement as CSV."),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, "The PDF."),
        },
    )
    def get(self, request, external_id: str, month: str):
        customer = customer_get(external_id=external_id)
        match = _MONTH.fullmatch(month)
        if match is None or not 2000 <= int(match[1]) <= 9998:
            raise NotFound(f"No statement '{month[:20]}': the month is written YYYY-MM.")
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            raise ValidationFailed(
                "Unknown format.", errors={"format": [f"One of {', '.join(FORMATS)}."]}
            )
        statement = statement_for(customer=customer, year=int(match[1]), month=int(match[2]))
        name = _filename(f"statement-{customer.external_id}-{statement.label}")
        if fmt == "csv":
            return HttpResponse(
                statement_csv(statement),
                content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if fmt == "pdf":
            return HttpResponse(
                statement_pdf(statement),
                content_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
            )
        return Response(statement_json(statement))
