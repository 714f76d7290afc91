"""Grants, read-only: they are made, voided and expired by wallet services."""

from __future__ import annotations

from django.contrib import admin

from core.admin.formatting import amount_html
from core.admin.links import changelist_link, link
from core.admin.lists import selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin
from wallets.models import Grant, LedgerEntry, Wallet


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: grants are made, voided and expired by wallet services. Finance staff top up,
    grant, adjust and void from the customer page (``billing.admin.customers.CustomerAdmin``), whose
    actions call those services; a wallet here knows no customer."""

    list_display = (
        "id",
        "wallet_display",
        "purpose",
        "priority",
        "amount_display",
        "remaining_display",
        "held_display",
        "expires_at",
        "status",
        "created_at",
    )
    list_select_related = ("wallet", "asset")
    list_filter = (
        "status",
        "purpose",
        "asset__kind",
        selected_object_filter("wallet", "wallet"),
        ("expires_at", admin.DateFieldListFilter),
    )
    search_fields = ("=id", "=wallet__owner", "reference")
    search_help_text = "Grant id, exact wallet owner (customer:<external id>) or reference."
    date_hierarchy = "created_at"
    fields = (
        "id",
        "wallet_display",
        "asset",
        "purpose",
        "priority",
        "amount_display",
        "remaining_display",
        "held_display",
        "expires_at",
        "meters",
        "cost",
        "reference",
        "source",
        "status",
        "created_at",
        "closed_at",
        "metadata",
        "entries_link",
    )
    readonly_fields = fields

    @admin.display(description="Wallet", ordering="wallet__owner")
    def wallet_display(self, obj: Grant) -> str:
        return link(Wallet, obj.wallet_id, obj.wallet.owner)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: Grant) -> str:
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Remaining", ordering="remaining")
    def remaining_display(self, obj: Grant) -> str:
        return amount_html(obj.remaining, obj.asset)

    @admin.display(description="Held", ordering="held")
    def held_display(self, obj: Grant) -> str:
        return amount_html(obj.held, obj.asset)

    @admin.display(description="Ledger")
    def entries_link(self, obj: Grant) -> str:
        return changelist_link(LedgerEntry, "Ledger entries of this grant", grant=obj.pk)
