"""The charge path in the database: ``billfold_event_charge`` and ``billfold_hold_reserve``
(billing/sql/event_charge.sql, hold_reserve.sql) charge an event or reserve a hold in one
statement. Each function here takes what the Python path takes and returns None, with
nothing written, for what it does not handle; the caller then runs the Python path.
``CHARGE_IN_DATABASE`` is read here only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from psycopg.types.json import Jsonb

from billing.metering.answers import Outcome, event_body, hold_body, hold_metadata
from billing.metering.context import Context, Period, charged_quantity
from billing.metering.decide import accrues
from billing.metering.errors import Duplicate
from billing.metering.input import EventData
from billing.selectors.prices import CachedPrice
from core.db import hot_cursor
from core.text import plain
from plans.pricing import GRADUATED, PACKAGE, PER_UNIT, Tier
from wallets.models import Hold
from wallets.services.idempotency import request_hash

CHARGE_SQL = (
    "SELECT billfold_event_charge("  # billing/sql/event_charge.sql
    + ", ".join(["%s"] * 33)
    + ")"
)

DATABASE_MODELS = frozenset({PER_UNIT, PACKAGE, GRADUATED})


def in_database(ctx: Context, period: Period, price: CachedPrice | None) -> bool:
    """Whether the database functions (billing/sql/event_charge.sql, hold_reserve.sql) may
    charge or reserve for this event: no spend limit to check, the current period, a price they
    can rate."""
    return (
        settings.CHARGE_IN_DATABASE
        and not ctx.has_limit
        and period[0] == ctx.current_period_start
        and (price is None or price.spec.model in DATABASE_MODELS)
    )


@dataclass(frozen=True)
class DecideTerms:
    """What ``billfold_charge_decide`` needs to know of an event's unit and price. The
    places are those the answers show amounts at (the decision is exact to 12 places in
    every asset)."""

    unit_places: int
    price_places: int
    params: list  # p_price … p_accrue, in the functions' order

    @classmethod
    def of(cls, ctx: Context, price: CachedPrice | None) -> DecideTerms:
        unit_places = 12 if ctx.unit_is_currency else ctx.unit_decimals
        if price is None:
            return cls(unit_places, 0, [None, None, 0, None, None, None, None, None, False])
        spec = price.spec
        price_places = 12 if price.asset_is_currency else price.asset_decimals
        accrue = accrues(ctx, price)
        return cls(
            unit_places,
            price_places,
            [
                price.id,
                price.asset,
                price_places,
                spec.model,
                spec.unit_price,
                spec.package_size,
                spec.package_price,
                Jsonb([_tier_json(t) for t in spec.tiers]),
                accrue,
            ],
        )


def _tier_json(tier: Tier) -> dict[str, str | None]:
    return {
        "up_to": None if tier.up_to is None else str(tier.up_to),
        "unit_price": str(tier.unit_price),
        "flat_fee": str(tier.flat_fee),
    }


def event_charge(
    ctx: Context,
    data: EventData,
    period: Period,
    price: CachedPrice | None,
    now: datetime,
    hold: Hold | None = None,
) -> Outcome | None:
    """The common accepted charge of one event in one statement: ``billfold_event_charge``
    (billing/sql/event_charge.sql) locks, reads, decides and writes what
    ``charge_locked`` would, in its own transaction (or the caller's). None, with nothing
    written, for everything else — a spend limit, a late or future period, a decline, holds
    or debt on the wallet, a revenue account still to make — which the Python path then
    charges, and words (a wallet's missing account the function makes, as ``accounts_lock``
    does). Raises ``Duplicate`` when the event id was written first.

    With ``hold`` (read with its allocations), the event captures it, as
    ``hold_capture_usage`` does: None too when the hold is no longer pending and live, or
    the capture would overdraw."""
    if not in_database(ctx, period, price):
        return None
    if hold is not None and not {a.asset_id for a in hold.allocations.all()} <= {
        ctx.unit,
        price.asset if price is not None else ctx.unit,
    }:
        return None  # it reserved an asset this charge does not lock (the plan changed)
    terms = DecideTerms.of(ctx, price)
    unit_revenue = ctx.revenue.get(ctx.unit)  # None: the function falls back if it needs it
    price_revenue = ctx.revenue.get(price.asset) if price is not None else None
    charge_asset = price.asset if price is not None else ctx.currency
    if price is not None:
        charge_places = terms.price_places
    else:
        charge_places = terms.unit_places if ctx.currency == ctx.unit else 12
    head = event_body(ctx, data, "accepted", None, [], {}, {})
    del head["balances"]
    if hold is not None:
        head["hold"] = hold.pk  # stored with the event, as accepted_event_write does
    price_id, price_asset, price_places, *spec, accrue = terms.params
    params = [
        ctx.wallet_id,
        ctx.meter_code,
        charged_quantity(ctx, data),
        min(now, data.timestamp),
        ctx.unit,
        terms.unit_places,
        unit_revenue,
        price_id,
        price_asset,
        price_places,
        price_revenue,
        *spec,
        accrue,
        ctx.subscription_id,
        period[0],
        period[1],
        charge_asset,
        charge_places,
        data.id,
        ctx.customer_id,
        ctx.meter_id,
        data.quantity,
        data.timestamp,
        Jsonb(data.properties),
        data.hash(),
        Jsonb(head),
        f"{ctx.meter_code} × {plain(data.quantity)}",
        now,
        hold.pk if hold is not None else None,
    ]
    with hot_cursor() as cursor:
        cursor.execute(CHARGE_SQL, params)
        (answer,) = cursor.fetchone()
    if answer is None:
        return None
    if answer.get("duplicate"):
        raise Duplicate()
    txn = answer.pop("transaction")
    if hold is not None:
        del head["hold"]
        answer["hold"] = hold.pk  # last, as accepted_event_write answers
    return Outcome(status_code=201, body={**head, **answer}, txn_id=txn)


def hold_reserve(
    ctx: Context,
    data: EventData,
    period: Period,
    price: CachedPrice | None,
    now: datetime,
    expires_in: int,
    request: dict,
) -> Outcome | None:
    """The common reservation as one statement: ``billfold_hold_reserve``
    (billing/sql/hold_reserve.sql) locks, decides and writes what ``_reserve`` would, with the
    hold id's idempotency record, in its own transaction. None, with nothing written, for everything
    else (a decline, holds due to expire, a debt, a replay …): ``_reserve`` then answers."""
    if not in_database(ctx, period, price):
        return None
    terms = DecideTerms.of(ctx, price)
    hold = Hold(
        id=data.id,
        status=Hold.Status.PENDING,
        expires_at=now + timedelta(seconds=expires_in),
        created_at=now,
        metadata=hold_metadata(ctx, data),
    )
    head = hold_body(hold, {})
    with hot_cursor() as cursor:
        cursor.execute(
            RESERVE_SQL,
            [
                ctx.wallet_id,
                ctx.meter_code,
                charged_quantity(ctx, data),
                min(now, data.timestamp),
                ctx.unit,
                terms.unit_places,
                *terms.params,
                ctx.subscription_id,
                period[0],
                data.id,
                request_hash(request),
                Jsonb(hold.metadata),
                Jsonb(head),
                hold.expires_at,
                now,
            ],
        )
        (held,) = cursor.fetchone()
    if held is None:
        return None
    return Outcome(status_code=201, body={**head, "held": held})


RESERVE_SQL = "SELECT billfold_hold_reserve(" + ", ".join(["%s"] * 23) + ")"
