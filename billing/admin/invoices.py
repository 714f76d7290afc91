"""Invoices, written by services only. Finance staff and superusers finalize, void and mark
paid from the list and issue credit notes from the invoice's page, through the invoice services
the API calls; everyone who may view invoices downloads their PDF. Invoice number sequences are
read-only."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from billing.admin.display import customer_link, period_text
from billing.admin.invoice_lines import InvoiceLineInline
from billing.admin.money import (
    amount_field,
    can_move_money,
    new_form_key,
    reason_field,
    service_errors_to_form,
)
from billing.invoicing import (
    credit_note_create,
    invoice_creditable,
    invoice_finalize,
    invoice_html,
    invoice_mark_paid,
    invoice_pdf,
    invoice_void,
)
from billing.models import Invoice, InvoiceSequence, Subscription
from core.admin.formatting import EMPTY, amount_html, format_amount
from core.admin.links import change_url, link
from core.admin.lists import selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin
from core.errors import BillfoldError


class InvoiceMarkPaidForm(forms.Form):
    reference = forms.CharField(
        max_length=255,
        help_text="The payment's reference (bank transfer id, card charge, …); required.",
    )


class CreditNoteForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=255)
    description = forms.CharField(
        max_length=500, help_text="What is credited, as the customer reads it."
    )
    amount = amount_field("A positive amount in whole minor units of the invoice's currency.")
    reason = reason_field("Why the invoice is corrected (shown on the credit note).")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Invoices are written by services only, so the page has no edit form. Finance staff and
    superusers (``can_move_money``) finalize, void and mark paid through the list's actions
    and issue credit notes from the invoice's page; each calls the invoice service the API
    calls and is written to the invoice's history. Everyone who may view invoices downloads
    their PDF."""

    change_form_template = "admin/billing/invoice/change_form.html"
    list_display = (
        "number_display",
        "customer_display",
        "status",
        "kind",
        "period",
        "total_display",
        "currency",
        "issued_at",
        "due_at",
    )
    list_select_related = ("customer", "currency")
    list_filter = (
        "status",
        "kind",
        ("currency", admin.RelatedOnlyFieldListFilter),
        selected_object_filter("customer", "customer"),
    )
    search_fields = ("number", "=customer__external_id")
    search_help_text = "Invoice number or exact customer external id."
    date_hierarchy = "period_start"
    actions = ("finalize_invoices", "void_invoices", "mark_invoices_paid")
    fields = (
        "number_display",
        "customer_display",
        "subscription_display",
        "kind",
        "status",
        "currency",
        "period",
        "subtotal_display",
        "tax_rate",
        "tax_display",
        "total_display",
        "created_at",
        "issued_at",
        "due_at",
        "finalized_at",
        "paid_at",
        "payment_reference",
        "voided_at",
        "credit_note_for_display",
        "credit_notes_display",
        "reason",
    )
    readonly_fields = fields
    inlines = (InvoiceLineInline,)

    def has_money_permission(self, request: HttpRequest) -> bool:
        return can_move_money(request.user)

    # --- columns --------------------------------------------------------------------------------

    @admin.display(description="Number", ordering="number")
    def number_display(self, obj: Invoice):
        return str(obj)

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_display(self, obj: Invoice):
        return customer_link(obj.customer)

    @admin.display(description="Subscription")
    def subscription_display(self, obj: Invoice):
        return link(Subscription, obj.subscription_id)

    @admin.display(description="Period", ordering="period_start")
    def period(self, obj: Invoice):
        return period_text(obj.period_start, obj.period_end)

    @admin.display(description="Subtotal")
    def subtotal_display(self, obj: Invoice):
        return amount_html(obj.subtotal, obj.currency)

    @admin.display(description="Tax")
    def tax_display(self, obj: Invoice):
        return amount_html(obj.tax, obj.currency)

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj: Invoice):
        return amount_html(obj.total, obj.currency)

    @admin.display(description="Credit note for")
    def credit_note_for_display(self, obj: Invoice):
        return link(Invoice, obj.credit_note_for_id, str(obj.credit_note_for or ""))

    @admin.display(description="Credit notes")
    def credit_notes_display(self, obj: Invoice):
        notes = obj.credit_notes.select_related("currency").order_by("pk")
        if not notes:
            return EMPTY
        return format_html_join(
            ", ",
            "{} ({}, {})",
            (
                (link(Invoice, n.pk, str(n)), amount_html(n.total, n.currency), n.status)
                for n in notes
            ),
        )

    # --- actions (Finance and superusers) -------------------------------------------------------

    def _apply(
        self,
        request: HttpRequest,
        queryset,
        *,
        verb: str,
        call: Callable[[Invoice], Invoice],
        target: str,
    ) -> None:
        """Call the service for each selected invoice in its own transaction, with its history
        entry; report what changed, what already was so, and what was refused (and why)."""
        changed: list[str] = []
        already: list[str] = []
        refused: list[str] = []
        for invoice in queryset.order_by("pk"):
            label = str(invoice)
            try:
                with transaction.atomic():
                    result = call(invoice)
                    if result.status == target and invoice.status != target:
                        self.log_change(request, result, f"{verb} ({label} → {result}).")
                        changed.append(str(result))
                    else:
                        already.append(str(result))
            except BillfoldError as exc:
                refused.append(f"{label}: {exc.detail}")
        if changed:
            self.message_user(request, f"{verb}: {', '.join(changed)}.", messages.SUCCESS)
        if already:
            self.message_user(request, f"Already {target}: {', '.join(already)}.", messages.INFO)
        for text in refused:
            self.message_user(request, f"Not {target}: {text}", messages.ERROR)

    def _confirm_page(
        self, request: HttpRequest, queryset, *, action: str, title: str, intro: str, form=None
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/billing/invoice/action.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "intro": intro,
                "invoices": list(queryset.select_related("customer", "currency").order_by("pk")),
                "form": form,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "select_across": request.POST.get("select_across", "0"),
            },
        )

    @admin.action(description="Finalize the selected drafts", permissions=["money"])
    def finalize_invoices(self, request: HttpRequest, queryset) -> None:
        self._apply(
            request,
            queryset,
            verb="Finalized",
            target=Invoice.Status.FINALIZED,
            call=lambda invoice: invoice_finalize(invoice_id=invoice.pk),
        )

    @admin.action(description="Void the selected invoices…", permissions=["money"])
    def void_invoices(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        if "apply" in request.POST:
            self._apply(
                request,
                queryset,
                verb="Voided",
                target=Invoice.Status.VOID,
                call=lambda invoice: invoice_void(invoice_id=invoice.pk),
            )
            return None
        return self._confirm_page(
            request,
            queryset,
            action="void_invoices",
            title="Void invoices",
            intro="A void invoice stays in the register with its number and is owed no more. "
            "A draft is numbered and voided. Paid invoices are corrected with credit notes.",
        )

    @admin.action(description="Mark the selected invoices paid…", permissions=["money"])
    def mark_invoices_paid(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        form = InvoiceMarkPaidForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            reference = form.cleaned_data["reference"]
            self._apply(
                request,
                queryset,
                verb=f"Marked paid with reference “{reference}”",
                target=Invoice.Status.PAID,
                call=lambda invoice: invoice_mark_paid(invoice_id=invoice.pk, reference=reference),
            )
            return None
        return self._confirm_page(
            request,
            queryset,
            action="mark_invoices_paid",
            title="Mark invoices paid",
            intro="Records the payment of finalized invoices; the reference is kept with each.",
            form=form,
        )

    # --- the invoice's pages: PDF, printable HTML, credit note ---------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        pages = [
            ("pdf/", self.pdf_view, "pdf"),
            ("html/", self.html_view, "html"),
            ("credit-note/", self.credit_note_view, "credit_note"),
        ]
        # before the default URLs: their "<path:object_id>/" would take these paths
        return [
            path(f"<path:object_id>/{route}", wrap(view), name=f"{info[0]}_{info[1]}_{name}")
            for route, view, name in pages
        ] + super().get_urls()

    def _invoice(self, request: HttpRequest, object_id: str) -> Invoice:
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        return invoice

    @staticmethod
    def _creditable(invoice: Invoice) -> bool:
        return invoice.kind != Invoice.Kind.CREDIT_NOTE and invoice.status in (
            Invoice.Status.FINALIZED,
            Invoice.Status.PAID,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if invoice is not None:
            opts = self.opts
            name = f"admin:{opts.app_label}_{opts.model_name}"
            extra["pdf_url"] = reverse(f"{name}_pdf", args=[quote(invoice.pk)])
            extra["html_url"] = reverse(f"{name}_html", args=[quote(invoice.pk)])
            if can_move_money(request.user) and self._creditable(invoice):
                extra["credit_note_url"] = reverse(f"{name}_credit_note", args=[quote(invoice.pk)])
        return super().change_view(request, object_id, form_url, extra)

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        invoice = self._invoice(request, object_id)
        name = (invoice.number or f"draft-{invoice.pk}").replace('"', "")
        return HttpResponse(
            invoice_pdf(invoice),
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )

    def html_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponse(invoice_html(self._invoice(request, object_id)))

    def credit_note_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not can_move_money(request.user):
            raise PermissionDenied
        invoice = self._invoice(request, object_id)
        back = change_url(Invoice, invoice.pk)
        if not self._creditable(invoice):
            self.message_user(
                request, f"{invoice} cannot be credited (it is {invoice.status}).", messages.ERROR
            )
            return HttpResponseRedirect(back)
        if request.method == "POST":
            form = CreditNoteForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    with transaction.atomic():
                        note = credit_note_create(
                            invoice_id=invoice.pk,
                            lines=[{"description": data["description"], "amount": data["amount"]}],
                            reason=data["reason"],
                            idempotency_key=data["idempotency_key"],
                        )
                        logged = LogEntry.objects.filter(
                            content_type_id=get_content_type_for_model(note).pk,
                            object_id=str(note.pk),
                        ).exists()
                        if not logged:
                            self.log_addition(
                                request, note, f"Credit note {note} for {invoice}: {note.reason}"
                            )
                except BillfoldError as exc:
                    exc.errors = {
                        ("amount" if key.endswith(".amount") else key.split(".")[-1]): texts
                        for key, texts in exc.errors.items()
                    }
                    service_errors_to_form(form, exc)
                else:
                    self.message_user(
                        request,
                        f"Credit note {note} issued for {invoice}: "
                        f"{format_amount(note.total, invoice.currency.decimals)} "
                        f"{invoice.currency_id}.",
                    )
                    return HttpResponseRedirect(change_url(Invoice, note.pk))
        else:
            form = CreditNoteForm(initial={"idempotency_key": new_form_key()})
        left_subtotal, left_tax = invoice_creditable(invoice=invoice)
        return TemplateResponse(
            request,
            "admin/billing/invoice/credit_note.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": invoice,
                "title": f"Credit note for {invoice}",
                "form": form,
                "invoice_url": back,
                "creditable": amount_html(left_subtotal, invoice.currency),
                "creditable_tax": amount_html(left_tax, invoice.currency),
                "tax_rate": format_amount(invoice.tax_rate),
            },
        )


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("prefix", "year", "last")
    ordering = ("prefix", "-year")
