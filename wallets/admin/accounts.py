"""Wallets and their accounts, read-only: wallets are created with their customer and
balances change only through wallet services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin.formatting import amount_html
from core.admin.links import changelist_link, obj_link
from core.admin.lists import EstimatedCountPaginator, IndexedSearchMixin, selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin
from wallets.admin.panels import account_holder, wallet_links, wallet_panel
from wallets.models import Account, LedgerEntry, Wallet


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Wallets are created with their customer (``billing.services.customers.customer_create``);
    balances change only through wallet services."""

    list_display = ("owner", "customer_display", "created_at")
    list_select_related = ("customer",)
    search_fields = ("owner", "customer__external_id", "customer__name")
    date_hierarchy = "created_at"
    fields = ("owner", "customer_display", "created_at", "balances", "history")
    readonly_fields = fields

    @admin.display(description="Customer")
    def customer_display(self, obj: Wallet) -> str:
        customer = getattr(obj, "customer", None)
        return obj_link(customer)

    @admin.display(description="Wallet")
    def balances(self, obj: Wallet) -> str:
        return wallet_panel(obj)

    @admin.display(description="History")
    def history(self, obj: Wallet) -> str:
        return wallet_links(obj)


class AccountKindFilter(admin.SimpleListFilter):
    title = "account type"
    parameter_name = "type"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> tuple[tuple[str, str], ...]:
        return (("wallet", "Wallet accounts"), ("system", "System accounts"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> QuerySet[Account]:
        if self.value() == "wallet":
            return queryset.filter(wallet__isnull=False)
        if self.value() == "system":
            return queryset.filter(wallet__isnull=True)
        return queryset


@admin.register(Account)
class AccountAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "holder",
        "asset",
        "posted_display",
        "held_display",
        "available_display",
        "created_at",
    )
    list_select_related = ("wallet", "asset")
    list_filter = (
        AccountKindFilter,
        "system_code",
        "asset__kind",
        selected_object_filter("wallet", "wallet"),
    )
    exact_search_fields = ("wallet__owner", "asset__code")
    search_help_text = "Exact wallet owner (customer:<external id>), asset code or account id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "holder",
        "asset",
        "posted_display",
        "held_display",
        "available_display",
        "created_at",
        "entries_link",
    )
    readonly_fields = fields

    @admin.display(description="Holder")
    def holder(self, obj: Account) -> str:
        return account_holder(obj)

    @admin.display(description="Posted", ordering="posted")
    def posted_display(self, obj: Account) -> str:
        return amount_html(obj.posted, obj.asset)

    @admin.display(description="Held", ordering="held")
    def held_display(self, obj: Account) -> str:
        return amount_html(obj.held, obj.asset)

    @admin.display(description="Available")
    def available_display(self, obj: Account) -> str:
        if obj.wallet_id is None:
            return "derived from entries"
        return amount_html(obj.available, obj.asset)

    @admin.display(description="Entries")
    def entries_link(self, obj: Account) -> str:
        return changelist_link(LedgerEntry, "Ledger entries of this account", account=obj.pk)
