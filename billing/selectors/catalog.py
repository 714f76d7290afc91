"""Reads of the catalogue the API serves: assets with their rates, meters, and plans with
their versions."""

from __future__ import annotations

from django.db.models import QuerySet

from plans.models import Meter, Plan, PlanVersion
from wallets.models import Asset


def asset_list(*, kind: str | None = None) -> QuerySet[Asset]:
    """Assets with their rates, of one kind when given."""
    query = Asset.objects.prefetch_related("rates")
    return query.filter(kind=kind) if kind else query


def asset_find(*, code: str) -> Asset | None:
    return Asset.objects.prefetch_related("rates").filter(code=code).first()


def currency_exists(*, code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency of the installation."""
    return Asset.objects.filter(code=code, kind=Asset.Kind.CURRENCY).exists()


def meter_list() -> QuerySet[Meter]:
    return Meter.objects.all()


def meter_find(*, code: str) -> Meter | None:
    return Meter.objects.filter(code=code).first()


def plan_list() -> QuerySet[Plan]:
    """The plans offered: archived ones are left out."""
    return Plan.objects.filter(archived_at__isnull=True)


def plan_find(*, code: str) -> Plan | None:
    return Plan.objects.filter(code=code).first()


def plan_versions(*, plan: Plan) -> QuerySet[PlanVersion]:
    """The plan's versions with what ``version_json`` shows of them (currency, prices and
    their meters) loaded."""
    return plan.versions.select_related("plan", "currency").prefetch_related("prices__meter")


def plan_latest_version(*, plan: Plan) -> PlanVersion | None:
    return plan_versions(plan=plan).order_by("-version").first()
