"""Money moves from the customer page: "Top up", "Grant promotional credits", "Adjust" and "Void"
are small form pages that call the wallet services the API calls (``grant_create``,
``customer_grant_create``, ``wallet_adjust``, ``grant_void``), only for Finance staff and
superusers (``can_move_money``), each written to the customer's history. The customer's ledger
has a read-only page of its own."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from billing.admin.money import (
    AdjustmentForm,
    Done,
    GrantVoidForm,
    PromotionalGrantForm,
    TopUpForm,
    can_move_money,
    new_form_key,
    service_errors_to_form,
)
from billing.models import Customer
from billing.services.grants import customer_grant_create
from core.admin.formatting import amount_html, datetime_text, format_amount
from core.admin.links import change_url, link
from core.errors import BillfoldError
from wallets.admin.panels import wallet_panel
from wallets.models import Account, Asset, Grant, LedgerTransaction, Wallet
from wallets.selectors import wallet_transactions
from wallets.services import grant_create, grant_void, wallet_adjust

LEDGER_PAGE_SIZE = 50


class CustomerWalletPages:
    """The pages of a customer's wallet, for ``CustomerAdmin``: "Top up", "Grant promotional
    credits", "Adjust" and "Void" parse a form, call one wallet service and log what was done in
    the customer's history; the ledger lists the wallet's transactions. The admin's
    ``get_urls`` routes them."""

    def _action_url(self, name: str, object_id: Any, *args: Any) -> str:
        opts = self.opts
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_{name}", args=[quote(object_id), *args]
        )

    def _customer(self, request: HttpRequest, object_id: str) -> Customer:
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("No such customer.")
        return customer

    def _money_customer(self, request: HttpRequest, object_id: str) -> Customer:
        if not can_move_money(request.user):
            raise PermissionDenied
        return self._customer(request, object_id)

    def _audit(self, request: HttpRequest, customer: Customer, marker: str, message: str) -> bool:
        """Write ``message`` to the customer's history unless an entry with ``marker`` (the
        grant or transaction it made) is there: a replayed form returns what its first submit
        did, and that submit logged it in the same transaction as the money moved (the replay
        waits on the idempotency key until that transaction commits)."""
        logged = LogEntry.objects.filter(
            content_type_id=get_content_type_for_model(customer).pk,
            object_id=str(customer.pk),
            change_message__contains=marker,
        ).exists()
        if not logged:
            self.log_change(request, customer, message)
        return not logged

    def _operation_page(
        self,
        request: HttpRequest,
        object_id: str,
        *,
        form_class: type[forms.Form],
        title: str,
        submit: str,
        perform: Callable[[HttpRequest, Customer, dict[str, Any]], Done],
        intro: str = "",
    ) -> HttpResponse:
        """GET: a fresh form (with a new idempotency key). POST: the service runs in one
        transaction with its audit entry; its refusal is shown on the form and nothing is
        written; success goes back to the customer with a message."""
        customer = self._money_customer(request, object_id)
        if request.method == "POST":
            form = form_class(request.POST, customer=customer)
            if form.is_valid():
                try:
                    with transaction.atomic():
                        done = perform(request, customer, form.cleaned_data)
                except BillfoldError as exc:
                    service_errors_to_form(form, exc)
                else:
                    level = messages.SUCCESS if done.new else messages.INFO
                    self.message_user(request, done.message, level)
                    return HttpResponseRedirect(change_url(Customer, customer.pk))
        else:
            form = form_class(customer=customer, initial={"idempotency_key": new_form_key()})
        return self._render_page(
            request,
            customer,
            "admin/billing/customer/wallet_operation.html",
            title=title,
            form=form,
            submit=submit,
            intro=intro,
            panel=wallet_panel(customer.wallet),
        )

    def _render_page(
        self, request: HttpRequest, customer: Customer, template: str, **context: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": customer,
                "customer_url": change_url(Customer, customer.pk),
                **context,
            },
        )

    def top_up_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(request: HttpRequest, customer: Customer, data: dict[str, Any]) -> Done:
            asset: Asset = data["asset"]
            grant = grant_create(
                wallet_id=customer.wallet_id,
                asset=asset.code,
                amount=data["amount"],
                purpose=Grant.Purpose.PAID,
                cost=data["cost"],
                reference=data["reference"],
                idempotency_key=data["idempotency_key"],
                metadata={"reason": data["reason"], "actor": request.user.get_username()},
            )
            amount = f"{format_amount(grant.amount, asset.decimals)} {asset.code}"
            cost = grant.cost
            details = "".join(
                (
                    f", cost {format_amount(cost.amount, asset.decimals)} {cost.currency}"
                    if cost is not None
                    else "",
                    f", reference “{grant.reference}”" if grant.reference else "",
                )
            )
            new = self._audit(
                request,
                customer,
                f"paid grant {grant.pk}.",
                f"Top up: {amount}{details} as paid grant {grant.pk}. Reason: {data['reason']}",
            )
            if not new:
                return Done(f"This top-up was already recorded: {amount} ({grant.pk}).", False)
            return Done(f"Topped up {amount} for {customer} (grant {grant.pk}).")

        return self._operation_page(
            request,
            object_id,
            form_class=TopUpForm,
            title="Top up",
            submit="Top up",
            perform=perform,
            intro="A paid grant: value the customer paid for, burned after promotional credits "
            "of lower priority.",
        )

    def grant_promotional_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(request: HttpRequest, customer: Customer, data: dict[str, Any]) -> Done:
            asset: Asset = data["asset"]
            meters = [m.code for m in data["meters"]] or None
            grant = customer_grant_create(
                customer=customer,
                asset=asset.code,
                amount=data["amount"],
                purpose=Grant.Purpose.PROMOTIONAL,
                priority=data["priority"],
                expires_at=data["expires_at"],
                meters=meters,
                reference=data["reference"],
                idempotency_key=data["idempotency_key"],
                metadata={"reason": data["reason"], "actor": request.user.get_username()},
            )
            amount = f"{format_amount(grant.amount, asset.decimals)} {asset.code}"
            terms = "".join(
                (
                    f", priority {grant.priority}",
                    f", expires {datetime_text(grant.expires_at)}" if grant.expires_at else "",
                    f", only for {', '.join(grant.meters)}" if grant.meters else "",
                )
            )
            new = self._audit(
                request,
                customer,
                f"promotional grant {grant.pk}.",
                f"Granted {amount}{terms} as promotional grant {grant.pk}. "
                f"Reason: {data['reason']}",
            )
            if not new:
                return Done(f"This grant was already recorded: {amount} ({grant.pk}).", False)
            return Done(f"Granted {amount} of promotional credit to {customer} ({grant.pk}).")

        return self._operation_page(
            request,
            object_id,
            form_class=PromotionalGrantForm,
            title="Grant promotional credits",
            submit="Grant",
            perform=perform,
            intro="Free value (goodwill, trials, campaigns), booked against the promotional "
            "account.",
        )

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(request: HttpRequest, customer: Customer, data: dict[str, Any]) -> Done:
            asset: Asset = data["asset"]
            txn = wallet_adjust(
                wallet_id=customer.wallet_id,
                asset=asset.code,
                amount=data["amount"],
                reason=data["reason"],
                idempotency_key=data["idempotency_key"],
                actor=request.user.get_username(),
            )
            # the service accepted the amount, so it is a number
            signed = Decimal(data["amount"].strip())
            amount = f"{'+' if signed > 0 else ''}{format_amount(signed, asset.decimals)}"
            new = self._audit(
                request,
                customer,
                f"transaction #{txn.pk}.",
                f"Adjusted {asset.code} by {amount} in transaction #{txn.pk}. "
                f"Reason: {data['reason']}",
            )
            if not new:
                return Done(f"This adjustment was already recorded (transaction #{txn.pk}).", False)
            return Done(
                f"Adjusted {asset.code} by {amount} for {customer} (transaction #{txn.pk})."
            )

        return self._operation_page(
            request,
            object_id,
            form_class=AdjustmentForm,
            title="Adjust the balance",
            submit="Adjust",
            perform=perform,
        )

    def void_grant_view(self, request: HttpRequest, object_id: str, grant_id: str) -> HttpResponse:
        customer = self._money_customer(request, object_id)
        grant = (
            Grant.objects.select_related("asset")
            .filter(pk=unquote(grant_id), wallet_id=customer.wallet_id)
            .first()
        )
        if grant is None:
            raise Http404("No such grant in this customer's wallet.")
        form = GrantVoidForm(request.POST if request.method == "POST" else None)
        closed = grant.status != Grant.Status.ACTIVE  # nothing to void: no form, no call
        if not closed and request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            remaining = f"{format_amount(grant.remaining, grant.asset.decimals)} {grant.asset_id}"
            try:
                with transaction.atomic():
                    grant_void(
                        grant_id=grant.pk,
                        reason=f"{reason} (by {request.user.get_username()})",
                    )
                    new = self._audit(
                        request,
                        customer,
                        f"Voided grant {grant.pk}:",
                        f"Voided grant {grant.pk}: {remaining} removed. Reason: {reason}",
                    )
            except BillfoldError as exc:
                service_errors_to_form(form, exc)
            else:
                if new:
                    self.message_user(request, f"Voided grant {grant.pk}: {remaining} removed.")
                else:
                    self.message_user(
                        request, f"Grant {grant.pk} was already voided.", messages.INFO
                    )
                return HttpResponseRedirect(change_url(Customer, customer.pk))
        return self._render_page(
            request,
            customer,
            "admin/billing/customer/void_grant.html",
            title=f"Void grant {grant.pk}",
            form=None if closed else form,
            closed=closed,
            grant=grant,
            grant_amounts={
                "amount": amount_html(grant.amount, grant.asset),
                "remaining": amount_html(grant.remaining, grant.asset),
                "held": amount_html(grant.held, grant.asset),
            },
            submit="Void the grant",
        )

    def ledger_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The wallet's transactions, newest first, 50 a page, each with all its entries
        (both sides). Five queries whatever the page holds."""
        customer = self._customer(request, object_id)
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        wallet_id = customer.wallet_id
        query = wallet_transactions(wallet_id=wallet_id).prefetch_related(
            "entries__account", "entries__asset"
        )
        page = Paginator(query, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [
            {
                "txn": txn,
                "link": link(LedgerTransaction, txn.pk, f"#{txn.pk}"),
                "reverses": link(LedgerTransaction, txn.reverses_id, f"#{txn.reverses_id}"),
                "entries": [
                    {
                        "account": entry_side(entry.account, wallet_id),
                        "asset": entry.asset_id,
                        "amount": format_amount(entry.amount, entry.asset.decimals),
                        "grant": link(Grant, entry.grant_id),
                    }
                    for entry in txn.entries.all()
                ],
            }
            for txn in page.object_list
        ]
        return self._render_page(
            request,
            customer,
            "admin/billing/customer/ledger.html",
            title=f"Ledger of {customer}",
            page_obj=page,
            rows=rows,
            can_move_money=can_move_money(request.user),
            top_up_url=self._action_url("top_up", customer.pk),
        )


def entry_side(account: Account, wallet_id: int) -> SafeString | str:
    """Which side an entry is on: this wallet, another wallet (a transfer) or a system
    account (by its code)."""
    if account.wallet_id == wallet_id:
        return "Wallet"
    if account.wallet_id is not None:
        return link(Wallet, account.wallet_id, f"Wallet #{account.wallet_id}")
    return format_html("System: {}", account.system_code)
