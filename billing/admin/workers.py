"""Worker heartbeats: when each worker was last seen."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from billing.models import Heartbeat
from core.admin.formatting import datetime_text
from core.admin.permissions import ReadOnlyAdminMixin


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "hostname", "last_seen_at", "age", "runs")
    fields = ("name", "hostname", "last_seen_at", "age", "runs")
    readonly_fields = fields

    @admin.display(description="Last seen")
    def age(self, obj: Heartbeat):
        seconds = max(0, int((timezone.now() - obj.last_seen_at).total_seconds()))
        if seconds < 120:
            return f"{seconds} s ago"
        if seconds < 7200:
            return f"{seconds // 60} min ago"
        return f"{seconds // 3600} h ago ({datetime_text(obj.last_seen_at)})"
