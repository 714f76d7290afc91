"""A plan version and its prices as the catalogue pages show them: prices as sentences and
tables, a version's terms as a heading, and the subscriptions on a version as a link."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Count, Prefetch, QuerySet
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.admin.formatting import EMPTY, amount_html, format_amount
from core.admin.links import changelist_link, link
from core.errors import ValidationFailed
from plans.describe import describe_price
from plans.models import Plan, PlanVersion, Price
from plans.services import price_spec

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class VersionCounts(TypedDict):
    """What the version lists annotate on each version."""

    subscription_count: int


class PlanCounts(TypedDict):
    """What the plan list annotates on each plan."""

    latest: int | None
    version_count: int
    live_count: int


def subscriptions_link(version: PlanVersion, count: int) -> SafeString:
    """``count`` subscriptions, linked to the subscription list filtered to ``version`` (the
    subscription model is reached through the relation: ``plans`` does not import
    ``billing``)."""
    subscription = PlanVersion._meta.get_field("subscriptions").related_model
    label = f"{count} subscription" + ("" if count == 1 else "s")
    return changelist_link(subscription, label, plan_version=version.pk)


def filter_text(value: Any) -> str:
    if not value:
        return EMPTY
    if isinstance(value, dict):
        return ", ".join(f"{k} = {v}" for k, v in value.items())
    return str(value)


def price_sentence(price: Price) -> str:
    """``describe_price`` of a stored price, e.g. "1,000,000 tokens included, then USD
    0.000002 per token up to 10,000,000, then USD 0.0000015"."""
    try:
        spec = price_spec(price)
    except ValidationFailed:  # stored under older rules: say what it holds
        return price_terms(price)
    return describe_price(
        spec,
        included=price.included,
        unit=price.meter.unit_id,
        asset=price.asset_id,
        decimals=price.asset.decimals,
    )


def prices_table(version: PlanVersion) -> SafeString:
    prices = list(version.prices.all())
    if not prices:
        return format_html("<p>{}</p>", "No usage prices.")
    return format_html(
        "<table><thead><tr><th>Meter</th><th>Filter</th><th>Included per period</th>"
        "<th>Model</th><th>Price</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    price.meter.code,
                    filter_text(price.filter),
                    amount_html(price.included, price.meter.unit),
                    price.get_model_display(),
                    price_sentence(price),
                )
                for price in prices
            ),
        ),
    )


def version_heading(version: WithAnnotations[PlanVersion, VersionCounts]) -> SafeString:
    currency = version.currency
    terms = [
        version.get_interval_display(),
        format_html(
            "base fee {} {}",
            amount_html(version.base_fee, currency),
            version.get_base_fee_timing_display().lower(),
        ),
    ]
    if version.seat_price is not None:
        terms.append(format_html("{} per seat", amount_html(version.seat_price, currency)))
    if version.trial_days:
        terms.append(f"{version.trial_days}-day trial")
    return format_html(
        "<h4>{} · {} · {} · {}</h4>",
        link(PlanVersion, version.pk, f"v{version.version}"),
        version.name,
        format_html_join(", ", "{}", ((t,) for t in terms)),
        subscriptions_link(version, version.subscription_count),
    )


def versions_with_prices(
    plan: Plan,
) -> QuerySet[PlanVersion, WithAnnotations[PlanVersion, VersionCounts]]:
    """The plan's versions, newest first, with their subscription counts and prices (three
    queries however many versions and prices)."""
    return (
        PlanVersion.objects.filter(plan=plan)
        .select_related("plan", "currency")
        .annotate(subscription_count=Count("subscriptions"))
        .prefetch_related(
            Prefetch(
                "prices",
                queryset=Price.objects.select_related("meter__unit", "asset").order_by(
                    "position", "id"
                ),
            )
        )
        .order_by("-version")
    )


def decimal_or_none(value: Any) -> Decimal | None:
    """A number stored in a price's tiers as a Decimal; None when missing or not a number."""
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def price_terms(price: Price) -> str:
    """What a price charges, in words: ``0.000002 USD per unit``, ``0.50 USD per 10 units``,
    ``up to 10,000,000: 0.000002 USD; above: 0.0000015 USD``."""
    asset = price.asset
    code = asset.code
    if price.model == Price.Model.PER_UNIT:
        return f"{format_amount(price.unit_price, asset.decimals)} {code} per unit"
    if price.model == Price.Model.PACKAGE:
        return (
            f"{format_amount(price.package_price, asset.decimals)} {code} "
            f"per {format_amount(price.package_size)} units"
        )
    parts = []
    for tier in price.tiers or []:
        if not isinstance(tier, dict):
            continue
        up_to = decimal_or_none(tier.get("up_to"))
        unit_price = decimal_or_none(tier.get("unit_price"))
        flat_fee = decimal_or_none(tier.get("flat_fee"))
        bound = "above" if up_to is None else f"up to {format_amount(up_to)}"
        text = f"{bound}: {format_amount(unit_price, asset.decimals)} {code}"
        if flat_fee:
            text += f" + {format_amount(flat_fee, asset.decimals)} {code} flat"
        parts.append(text)
    return f"{price.get_model_display()}: " + "; ".join(parts)
