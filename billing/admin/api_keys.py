"""API keys: made by ``api_key_create`` (the secret shown once, only its hash stored) and
revoked by ``api_key_revoke``."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from billing.models import ApiKey
from billing.services.api_keys import api_key_create, api_key_revoke
from core.admin.formatting import EMPTY
from core.admin.permissions import has_model_perm
from core.admin.service_forms import ServiceFormMixin, adopt_saved


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes")


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("revoked", "Revoked"))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Keys are made by ``api_key_create``; the secret is shown once, on the page that answers
    the add form, and only its hash is stored. The hash is never shown."""

    list_display = (
        "name",
        "prefix",
        "scopes_display",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (ApiKeyStatusFilter,)
    search_fields = ("name", "=prefix")
    actions = ("revoke_selected",)
    readonly_fields = (
        "prefix",
        "scopes_display",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes")
        return ("name", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
        )
        adopt_saved(obj, key)
        request._api_key_raw = raw

    def response_add(self, request, obj, post_url_continue=None):
        """Show the key on this response itself (no redirect), so the secret never sits in a
        message cookie or the session waiting for the next page."""
        raw = getattr(request, "_api_key_raw", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        messages.success(
            request,
            format_html(
                "API key “{}” created. Copy it now, it will not be shown again: <code>{}</code>",
                obj.name,
                raw,
            ),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": obj,
            "scopes": self.scopes_display(obj),
        }
        return TemplateResponse(request, "admin/billing/apikey/created.html", context)

    @admin.action(description="Revoke selected keys", permissions=("revoke",))
    def revoke_selected(self, request, queryset):
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True).order_by("pk"):
            api_key_revoke(key=key)
            self.log_change(request, key, "Revoked.")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

    def has_revoke_permission(self, request) -> bool:
        return has_model_perm(request, ApiKey, "change")

    @admin.display(description="Scopes")
    def scopes_display(self, obj: ApiKey):
        return ", ".join(obj.scopes) or EMPTY
