"""Stored idempotency records (the answer replayed for a repeated key), read-only."""

from __future__ import annotations

from django.contrib import admin

from core.admin.lists import EstimatedCountPaginator, IndexedSearchMixin
from core.admin.permissions import ReadOnlyAdminMixin
from wallets.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("scope", "key", "status_code", "created_at")
    list_filter = (("created_at", admin.DateFieldListFilter),)
    exact_search_fields = ("key",)
    search_pk = False
    search_help_text = "Exact idempotency key."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ("scope", "key", "request_hash", "status_code", "response", "created_at")
    readonly_fields = fields
