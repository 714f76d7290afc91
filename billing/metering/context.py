"""What an event is charged in: its customer, subscription and meter (``RESOLVE_SQL``,
one query that also finds a replay and checks the caller's API key), and its period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection

from billing.metering.answers import Outcome, replayed
from billing.metering.errors import (
    InvalidTimestamp,
    KeyRefused,
    NoActiveSubscription,
    PeriodClosed,
    UnknownCustomer,
    UnknownMeter,
)
from billing.metering.input import EventData
from billing.models import Invoice, Subscription
from billing.services.api_keys import api_key_touch
from core.db import hot_cursor
from core.text import bounds_text
from plans.models import Meter
from plans.periods import period_containing

Period = tuple[datetime, datetime]  # an event's billing period: start, end


@dataclass(frozen=True)
class Context:
    customer_id: int
    external_id: str
    wallet_id: int
    currency: str
    subscription_id: int
    version_id: int
    started_at: datetime
    interval: str
    overage: str
    current_period_start: datetime
    current_period_end: datetime
    status: str
    anchor: datetime
    meter_id: int
    meter_code: str
    unit: str
    aggregation: str
    unit_is_currency: bool
    unit_decimals: int = 0
    has_limit: bool = False  # a spend limit exists (else spend is not counted per event)
    revenue: dict[str, int] = field(default_factory=dict)  # asset → revenue account id


RESOLVE_SQL = """
SELECT c.id, c.external_id, c.wallet_id, c.currency_id,
       s.id, s.plan_version_id, s.started_at, v.interval, s.overage,
       s.current_period_start, s.current_period_end, s.status,
       COALESCE(s.billing_anchor, s.started_at),
       m.id, m.code, m.unit_id, m.aggregation, ua.kind, ua.decimals,
       EXISTS (SELECT 1 FROM billing_spendlimit l WHERE l.customer_id = c.id),
       e.request_hash, e.response, e.status,
       ARRAY(SELECT r.asset_id FROM wallets_account r WHERE r.system_code = 'revenue'
             ORDER BY r.asset_id),
       ARRAY(SELECT r.id FROM wallets_account r WHERE r.system_code = 'revenue'
             ORDER BY r.asset_id)
FROM (SELECT 1) AS one
LEFT JOIN billing_customer c ON c.external_id = %s
LEFT JOIN billing_subscription s
       ON s.customer_id = c.id AND s.status IN ('trialing', 'active', 'canceled')
LEFT JOIN plans_planversion v ON v.id = s.plan_version_id
LEFT JOIN plans_meter m ON m.code = %s
LEFT JOIN wallets_asset ua ON ua.code = m.unit_id
LEFT JOIN billing_usageevent e ON e.event_id = %s
"""


class Resolved(NamedTuple):
    """A row of ``RESOLVE_SQL``, its columns in order. A key (``customer_id``,
    ``subscription_id``, ``meter_id``) is None when nothing matched; the columns after it
    are typed as they are once it matched (the LEFT JOIN leaves them None with their key),
    so they are read only after ``context_of`` has checked the keys."""

    customer_id: int | None
    external_id: str
    wallet_id: int
    currency: str
    subscription_id: int | None
    version_id: int
    started_at: datetime
    interval: str
    overage: str
    current_period_start: datetime
    current_period_end: datetime
    status: str
    anchor: datetime
    meter_id: int | None
    meter_code: str
    unit: str
    aggregation: str
    unit_kind: str
    unit_decimals: int
    has_limit: bool
    stored_hash: str | None  # the event id's stored request, when it was seen
    stored_response: Any
    stored_status: str  # None only with ``stored_hash``
    revenue_assets: list[str]
    revenue_ids: list[int]


RESOLVED_WIDTH = len(Resolved._fields)


class KeyColumns(NamedTuple):
    """The columns ``RESOLVE_KEYED_SQL`` adds after ``Resolved``'s: the caller's key."""

    key_id: int | None
    scopes: list[str]  # None only with ``key_id`` (no active key has that hash)
    last_used_at: datetime | None


# the same, with the caller's API key (by its hash) checked in the same query
RESOLVE_KEYED_SQL = (
    RESOLVE_SQL.replace(
        "FROM (SELECT 1) AS one", ", k.id, k.scopes, k.last_used_at\nFROM (SELECT 1) AS one"
    )
    + "LEFT JOIN billing_apikey k ON k.key_hash = %s AND k.revoked_at IS NULL\n"
)


def key_checked(key_id: int | None, scopes: list[str], last_used_at: datetime | None) -> None:
    """The key columns a hot query read with the caller's key (``billing_apikey`` joined by
    its hash, active only): ``KeyRefused`` unless it may send events; a use is recorded."""
    if key_id is None or "events" not in scopes:
        raise KeyRefused()
    api_key_touch(key_id=key_id, last_used_at=last_used_at)


def lookup(
    data: EventData, *, replay: bool = True, api_key_hash: str | None = None
) -> tuple[Outcome | None, Context | None]:
    """One query: the stored answer if the event id was seen (``replay``), else the context
    of the event (``Unprocessable`` when its customer, meter or subscription is missing).
    With ``api_key_hash``, the same query checks the caller's key first (``KeyRefused``)."""
    params = [data.customer, data.meter, data.id if replay else None]
    # in binary: Django's text loader of timestamptz is Python (~8 µs a value, six here)
    with hot_cursor(binary=True) as cursor:
        if api_key_hash is None:
            cursor.execute(RESOLVE_SQL, params)
        else:
            cursor.execute(RESOLVE_KEYED_SQL, [*params, api_key_hash])
        raw = cursor.fetchone()
    row = Resolved._make(raw[:RESOLVED_WIDTH])
    if api_key_hash is not None:
        key_checked(*KeyColumns._make(raw[RESOLVED_WIDTH:]))
    if row.stored_hash is not None:
        return replayed(data, row.stored_hash, row.stored_response, row.stored_status), None
    return None, context_of(row, data)


def context_of(row: Resolved, data: EventData) -> Context:
    """The context of ``data`` from a row of ``RESOLVE_SQL``."""
    if row.customer_id is None:
        raise UnknownCustomer(
            f"No customer with external_id '{data.customer}'.",
            errors={"customer": ["Unknown customer."]},
        )
    if row.meter_id is None:
        raise UnknownMeter(f"No meter '{data.meter}'.", errors={"meter": ["Unknown meter."]})
    if row.subscription_id is None:
        raise NoActiveSubscription(f"{data.customer} has no active subscription.")
    return Context(
        customer_id=row.customer_id,
        external_id=row.external_id,
        wallet_id=row.wallet_id,
        currency=row.currency,
        subscription_id=row.subscription_id,
        version_id=row.version_id,
        started_at=row.started_at,
        interval=row.interval,
        overage=row.overage,
        current_period_start=row.current_period_start,
        current_period_end=row.current_period_end,
        status=row.status,
        anchor=row.anchor,
        meter_id=row.meter_id,
        meter_code=row.meter_code,
        unit=row.unit,
        aggregation=row.aggregation,
        unit_is_currency=row.unit_kind == "currency",
        unit_decimals=row.unit_decimals,
        has_limit=row.has_limit,
        revenue=dict(zip(row.revenue_assets, row.revenue_ids, strict=True)),
    )


# the contexts of many (customer, meter) pairs at once (a batch)
RESOLVE_MANY_SQL = (
    RESOLVE_SQL.split("FROM (SELECT 1) AS one")[0]
    .replace("e.request_hash, e.response, e.status", "NULL, NULL, NULL")
    .rstrip()
    + ", p.customer, p.meter\n"
    + """FROM unnest(%b::varchar[], %b::varchar[]) AS p(customer, meter)
LEFT JOIN billing_customer c ON c.external_id = p.customer
LEFT JOIN billing_subscription s
       ON s.customer_id = c.id AND s.status IN ('trialing', 'active', 'canceled')
LEFT JOIN plans_planversion v ON v.id = s.plan_version_id
LEFT JOIN plans_meter m ON m.code = p.meter
LEFT JOIN wallets_asset ua ON ua.code = m.unit_id
"""
)


def resolve(data: EventData, *, api_key_hash: str | None = None) -> Context:
    _, ctx = lookup(data, replay=False, api_key_hash=api_key_hash)
    assert ctx is not None  # without a replay, a lookup finds the context or raises
    return ctx


def event_period(
    ctx: Context,
    data: EventData,
    now: datetime,
    known: dict[tuple[datetime, str], Period] | None = None,
) -> Period:
    """The event's period, after the checks of its time. ``known``: the last period found
    per series (anchor, interval), kept by a batch; the periods of a series partition time,
    so one that contains the timestamp is the period (the arithmetic is skipped)."""
    tolerance = timedelta(seconds=settings.BILLFOLD["FUTURE_EVENT_TOLERANCE_SECONDS"])
    if data.timestamp > now + tolerance:
        raise InvalidTimestamp(
            "The timestamp is more than 5 minutes in the future.",
            errors={"timestamp": ["At most 5 minutes ahead of the server's clock."]},
        )
    if data.timestamp < ctx.started_at:
        raise NoActiveSubscription(
            f"{data.customer}'s subscription starts {ctx.started_at.isoformat()}, after the event."
        )
    if ctx.status == Subscription.Status.CANCELED and data.timestamp >= ctx.current_period_end:
        raise NoActiveSubscription(f"{data.customer}'s subscription ended.")
    if data.timestamp < ctx.anchor:
        raise PeriodClosed("The event falls in a period billed under an earlier plan interval.")
    if known is None:
        return period_containing(ctx.anchor, ctx.interval, data.timestamp)
    series = (ctx.anchor, ctx.interval)
    period = known.get(series)
    if period is None or not period[0] <= data.timestamp < period[1]:
        period = known[series] = period_containing(ctx.anchor, ctx.interval, data.timestamp)
    return period


def check_open(ctx: Context, period: Period) -> None:
    """A period closed by period close stays open for late events until the invoice issued
    at its end is finalized. Runs inside the charge's transaction and holds a share lock on
    that invoice, so a finalization either waits for this event or is seen by it."""
    if period[0] >= ctx.current_period_start:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM billing_invoice WHERE subscription_id = %s AND kind = %s "
            "AND period_start = %s FOR SHARE",
            [ctx.subscription_id, Invoice.Kind.SUBSCRIPTION, period[1]],
        )
        row = cursor.fetchone()
    if row is not None and row[0] != Invoice.Status.DRAFT:
        raise PeriodClosed(
            f"The period {bounds_text(*period)} is invoiced; the event can no longer be accepted."
        )


def charged_quantity(ctx: Context, data: EventData) -> Decimal:
    """The quantity an event charges: 1 for a count meter."""
    return Decimal(1) if ctx.aggregation == Meter.Aggregation.COUNT else data.quantity
