"""Plans: a plan is added with its version 1 and changed by publishing a new version from a
JSON spec (docs/api.md's plan body), through the services the API calls; the plan page shows
every version's prices as sentences and how many subscriptions are on each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from core.admin.formatting import EMPTY, amount_html
from core.admin.links import change_url, changelist_link
from core.admin.permissions import ReadOnlyInline, has_model_perm
from core.errors import ValidationFailed
from plans.admin.display import (
    PlanCounts,
    VersionCounts,
    prices_table,
    subscriptions_link,
    version_heading,
    versions_with_prices,
)
from plans.admin.spec_forms import (
    NEW_PLAN_SPEC,
    PlanAddForm,
    PlanVersionPublishForm,
    spec_errors_to_form,
    spec_text,
)
from plans.models import Plan, PlanVersion
from plans.services import plan_create, plan_version_as_spec, plan_version_publish

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

# subscriptions that still bill: canceled ones run to their period end
LIVE_STATUSES = ("trialing", "active", "canceled")


class PlanVersionInline(ReadOnlyInline):
    model = PlanVersion
    fields = (
        "version",
        "name",
        "currency",
        "interval",
        "base_fee_display",
        "subscriptions_count",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("-version",)

    def get_queryset(
        self, request: HttpRequest
    ) -> QuerySet[PlanVersion, WithAnnotations[PlanVersion, VersionCounts]]:
        return (
            super()
            .get_queryset(request)
            .select_related("plan", "currency")
            .annotate(subscription_count=Count("subscriptions"))
        )

    @admin.display(description="Base fee")
    def base_fee_display(self, obj: PlanVersion) -> str:
        return amount_html(obj.base_fee, obj.currency)

    @admin.display(description="Subscriptions")
    def subscriptions_count(self, obj: WithAnnotations[PlanVersion, VersionCounts]) -> str:
        return subscriptions_link(obj, obj.subscription_count)


VERSIONS_SHOWN = 10


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """A plan is created together with its version 1 (``plan_create``) from the add page, and
    changed by publishing a new version (``plan_version_publish``) from its page; versions are
    never edited and subscriptions stay on theirs. Name, description and archiving are edited
    here."""

    change_form_template = "admin/plans/plan/change_form.html"

    list_display = (
        "code",
        "name",
        "latest_version",
        "versions_count",
        "live_subscriptions",
        "created_at",
        "archived_at",
    )
    list_filter = (("archived_at", admin.EmptyFieldListFilter),)
    search_fields = ("code", "name")
    inlines = (PlanVersionInline,)

    def get_queryset(
        self, request: HttpRequest
    ) -> QuerySet[Plan, WithAnnotations[Plan, PlanCounts]]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest=Max("versions__version"),
                version_count=Count("versions", distinct=True),
                live_count=Count(
                    "versions__subscriptions",
                    filter=Q(versions__subscriptions__status__in=LIVE_STATUSES),
                ),
            )
        )

    fields = ("code", "name", "description", "archived_at", "created_at", "prices_by_version")
    readonly_fields = ("code", "created_at", "prices_by_version")

    def get_fields(self, request: HttpRequest, obj: Plan | None = None) -> tuple[str, ...]:
        return self.fields if obj is not None else ("code", "name", "description")

    @admin.display(description="Prices by version")
    def prices_by_version(self, obj: Plan) -> str:
        versions = list(versions_with_prices(obj)[:VERSIONS_SHOWN])
        if not versions:
            return EMPTY
        total = obj.version_count if hasattr(obj, "version_count") else len(versions)
        more = (
            format_html(
                "<p>Showing the latest {} of {} versions: {}</p>",
                len(versions),
                total,
                changelist_link(PlanVersion, "all versions", plan__id__exact=obj.pk),
            )
            if total > len(versions)
            else ""
        )
        return format_html(
            "{}{}",
            format_html_join("", "{}{}", ((version_heading(v), prices_table(v)) for v in versions)),
            more,
        )

    # --- adding a plan and publishing versions --------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        publish = path(
            "<path:object_id>/publish/",
            self.admin_site.admin_view(self.publish_view),
            name=f"{opts.app_label}_{opts.model_name}_publish",
        )
        # before the default URLs: their "<path:object_id>/" would take this path
        return [publish, *super().get_urls()]

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, PlanVersion, "add")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {"can_publish": self.has_publish_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def _page(self, request: HttpRequest, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/plans/plan/spec_form.html",
            {**self.admin_site.each_context(request), "opts": self.opts, **context},
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Code, name, description and version 1 as a JSON spec → ``plan_create``."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PlanAddForm(request.POST or None, initial={"spec": spec_text(NEW_PLAN_SPEC)})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                version = plan_create(
                    code=data["code"],
                    name=data["name"],
                    description=data["description"],
                    spec=data["spec"],
                )
            except ValidationFailed as exc:
                spec_errors_to_form(form, exc)
            else:
                plan = version.plan
                self.log_addition(request, plan, "Added with version 1.")
                self.message_user(request, f"Plan {plan.code} added with version 1.")
                return HttpResponseRedirect(change_url(Plan, plan.pk))
        return self._page(
            request,
            title="Add plan",
            form=form,
            submit="Add plan",
            cancel_url=reverse("admin:plans_plan_changelist"),
            add=True,
        )

    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The latest version's spec, pre-filled, edited and published as the next version by
        ``plan_version_publish``; existing subscriptions stay on their version."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        plan = self.get_object(request, unquote(object_id))
        if plan is None:
            raise Http404("No such plan.")
        latest = versions_with_prices(plan).first()
        initial = plan_version_as_spec(latest) if latest is not None else NEW_PLAN_SPEC
        form = PlanVersionPublishForm(request.POST or None, initial={"spec": spec_text(initial)})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                version = plan_version_publish(plan=plan, spec=data["spec"], name=data["name"])
            except ValidationFailed as exc:
                spec_errors_to_form(form, exc)
            else:
                self.log_change(
                    request, plan, f"Published version {version.version} ({version.name})."
                )
                self.message_user(
                    request,
                    f"Published {plan.code} v{version.version}. Existing subscriptions stay on "
                    "their version.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url(Plan, plan.pk))
        return self._page(
            request,
            title=f"Publish a new version of {plan.code}",
            form=form,
            submit="Publish",
            original=plan,
            plan_url=change_url(Plan, plan.pk),
            cancel_url=change_url(Plan, plan.pk),
            latest=latest,
            latest_heading=version_heading(latest) if latest is not None else "",
            latest_prices=prices_table(latest) if latest is not None else "",
        )

    @admin.display(description="Latest version", ordering="latest")
    def latest_version(self, obj: WithAnnotations[Plan, PlanCounts]) -> str:
        return EMPTY if obj.latest is None else f"v{obj.latest}"

    @admin.display(description="Versions", ordering="version_count")
    def versions_count(self, obj: WithAnnotations[Plan, PlanCounts]) -> int:
        return obj.version_count

    @admin.display(description="Live subscriptions", ordering="live_count")
    def live_subscriptions(self, obj: WithAnnotations[Plan, PlanCounts]) -> int:
        return obj.live_count
