"""The ledger's transactions and entries, read-only. Both tables are large: search is on exact
indexed values and unfiltered lists are counted from PostgreSQL's estimate."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from core.admin.formatting import EMPTY, amount_html
from core.admin.links import link
from core.admin.lists import EstimatedCountPaginator, IndexedSearchMixin, selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin, ReadOnlyInline
from wallets.admin.panels import account_holder
from wallets.models import Grant, LedgerEntry, LedgerTransaction, Wallet


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("account_display", "amount_display", "grant_display", "created_at")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerEntry]:
        return super().get_queryset(request).select_related("account__wallet", "asset")

    @admin.display(description="Account")
    def account_display(self, obj: LedgerEntry) -> str:
        return account_holder(obj.account)

    @admin.display(description="Amount")
    def amount_display(self, obj: LedgerEntry) -> str:
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Grant")
    def grant_display(self, obj: LedgerEntry) -> str:
        return link(Grant, obj.grant_id)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "wallet_display",
        "reference",
        "description",
        "reverses_display",
    )
    list_select_related = ("wallet",)
    list_filter = (
        "kind",
        selected_object_filter("wallet", "wallet"),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = ("reference", "wallet__owner")
    search_help_text = "Transaction id, exact reference or exact wallet owner."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "id",
        "created_at",
        "kind",
        "wallet_display",
        "reference",
        "description",
        "reverses_display",
        "reversals_display",
        "metadata",
    )
    readonly_fields = fields
    inlines = (LedgerEntryInline,)

    @admin.display(description="Wallet", ordering="wallet__owner")
    def wallet_display(self, obj: LedgerTransaction) -> str:
        wallet = obj.wallet  # no query without a wallet id
        if wallet is None:
            return EMPTY
        return link(Wallet, wallet.pk, wallet.owner)

    @admin.display(description="Reverses")
    def reverses_display(self, obj: LedgerTransaction) -> str:
        return link(LedgerTransaction, obj.reverses_id)

    @admin.display(description="Reversed by")
    def reversals_display(self, obj: LedgerTransaction) -> str:
        reversals = list(obj.reversals.values_list("pk", flat=True))
        if not reversals:
            return EMPTY
        return format_html_join(", ", "{}", ((link(LedgerTransaction, pk),) for pk in reversals))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "transaction_display",
        "account_display",
        "amount_display",
        "grant_display",
    )
    list_select_related = ("transaction", "account__wallet", "asset")
    list_filter = (
        "transaction__kind",
        "asset__kind",
        selected_object_filter("account", "account"),
        selected_object_filter("grant", "grant"),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = ("transaction__reference", "grant__id")
    search_help_text = "Entry id, exact transaction reference or grant id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "id",
        "created_at",
        "transaction_display",
        "account_display",
        "amount_display",
        "grant_display",
    )
    readonly_fields = fields

    @admin.display(description="Transaction", ordering="transaction")
    def transaction_display(self, obj: LedgerEntry) -> str:
        return link(
            LedgerTransaction,
            obj.transaction_id,
            f"#{obj.transaction_id} {obj.transaction.get_kind_display()}",
        )

    @admin.display(description="Account")
    def account_display(self, obj: LedgerEntry) -> str:
        return account_holder(obj.account)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: LedgerEntry) -> str:
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Grant")
    def grant_display(self, obj: LedgerEntry) -> str:
        return link(Grant, obj.grant_id)
