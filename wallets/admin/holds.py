"""Holds and what each reserves from which grant, read-only: holds are placed, captured,
voided and expired by wallet services."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin.formatting import amount_html
from core.admin.links import link
from core.admin.lists import EstimatedCountPaginator, IndexedSearchMixin, selected_object_filter
from core.admin.permissions import ReadOnlyAdminMixin, ReadOnlyInline
from wallets.models import Grant, Hold, HoldAllocation, LedgerTransaction, Wallet


class HoldAllocationInline(ReadOnlyInline):
    model = HoldAllocation
    fields = ("grant_display", "amount_display")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[HoldAllocation]:
        return super().get_queryset(request).select_related("asset")

    @admin.display(description="Grant")
    def grant_display(self, obj: HoldAllocation) -> str:
        return link(Grant, obj.grant_id)

    @admin.display(description="Reserved")
    def amount_display(self, obj: HoldAllocation) -> str:
        return amount_html(obj.amount, obj.asset)


@admin.register(Hold)
class HoldAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: holds are placed, captured, voided and expired by wallet services."""

    list_display = (
        "id",
        "wallet_display",
        "status",
        "expires_at",
        "created_at",
        "resolved_at",
        "capture_display",
    )
    list_select_related = ("wallet",)
    list_filter = (
        "status",
        selected_object_filter("wallet", "wallet"),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = ("id", "wallet__owner")
    search_pk = False
    search_help_text = "Exact hold id or wallet owner."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "id",
        "wallet_display",
        "status",
        "expires_at",
        "created_at",
        "resolved_at",
        "capture_display",
        "metadata",
    )
    readonly_fields = fields
    inlines = (HoldAllocationInline,)

    @admin.display(description="Wallet", ordering="wallet__owner")
    def wallet_display(self, obj: Hold) -> str:
        return link(Wallet, obj.wallet_id, obj.wallet.owner)

    @admin.display(description="Capture")
    def capture_display(self, obj: Hold) -> str:
        return link(LedgerTransaction, obj.capture_transaction_id)


@admin.register(HoldAllocation)
class HoldAllocationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "hold_display", "grant_display", "amount_display")
    list_select_related = ("asset",)
    list_filter = (selected_object_filter("hold", "hold"),)
    search_fields = ("=hold__id", "=grant__id")
    fields = ("hold_display", "grant_display", "amount_display")
    readonly_fields = fields

    @admin.display(description="Hold")
    def hold_display(self, obj: HoldAllocation) -> str:
        return link(Hold, obj.hold_id)

    @admin.display(description="Grant")
    def grant_display(self, obj: HoldAllocation) -> str:
        return link(Grant, obj.grant_id)

    @admin.display(description="Reserved", ordering="amount")
    def amount_display(self, obj: HoldAllocation) -> str:
        return amount_html(obj.amount, obj.asset)
