"""Charging one usage event (docs/charging.md), in one database transaction with its insert:

1. units first: draw the quantity from the wallet's grants in the meter's unit (the meter's
   allowance first); what they cover is *included*, the rest *billable*;
2. price the billable part over the period's cumulative billable quantity (a counter per
   subscription, period and price, updated in the same transaction);
3. pay from the wallet's grants in the price's asset, in burn-down order;
4. a shortfall accrues to the period's invoice for postpaid (``invoice``) subscriptions in
   the billing currency; otherwise the event is declined and nothing changes;
5. a hard spend limit declines what would take the window's spend above it.

The service first decides, holding the locks of the wallet accounts it touches (reads only),
then writes. A declined event is recorded with its code and charges nothing. The integrator's
event id makes it idempotent: a replay returns the stored response; the same id with another
body is an ``IdempotencyConflict``; concurrent duplicates are charged once.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.metering import database
from billing.metering import spend as spend_service
from billing.metering.answers import (
    Outcome,
    declined_problem,
    event_body,
    event_replay,
    known_decimals,
    periodic_body,
)
from billing.metering.context import Context, Period, check_open, event_period, lookup
from billing.metering.decide import Charge, decide, ensure_allowance, realtime
from billing.metering.errors import Duplicate
from billing.metering.input import EventData
from billing.metering.periodic_bounds import PeriodicCounters, periodic_prices
from billing.metering.reads import DATABASE_READS, DatabaseReads
from billing.metering.write import insert_event, periodic_fields
from billing.selectors.prices import CachedPrice, price_for_event
from core.errors import Declined
from wallets.models import Account
from wallets.services import holds_release_expired


def event_charge(
    *, data: EventData, now: datetime | None = None, api_key_hash: str | None = None
) -> Outcome:
    """Price, authorize and debit one usage event, exactly once (see the module docstring).

    Raises ``ValidationFailed`` / ``Unprocessable`` (nothing written) for events that cannot
    be processed; returns a 201 outcome when accepted and a 402 outcome (recorded) when
    declined. ``api_key_hash``: the caller's key, checked in the event's first query (one
    round trip less than checking it first); ``KeyRefused`` when it may not send events."""
    now = now or timezone.now()
    replay, ctx = lookup(data, api_key_hash=api_key_hash)
    if replay is not None:
        return replay
    assert ctx is not None  # a lookup without a replay finds the context or raises
    period = event_period(ctx, data, now)
    price = price_for_event(ctx.version_id, ctx.meter_id, data.properties)
    charged_now = realtime(ctx, price)
    try:
        if charged_now:
            outcome = database.event_charge(ctx, data, period, price, now)
            if outcome is not None:
                return outcome
        with transaction.atomic():
            if not charged_now:
                return _record_periodic(ctx, data, period, now)
            return charge_locked(ctx, data, period, price, now)
    except Duplicate:
        replay = event_replay(data)
        if replay is None:  # pragma: no cover - the duplicate committed, so it is there
            raise
        return replay


def _record_periodic(ctx: Context, data: EventData, period: Period, now: datetime) -> Outcome:
    """Record an event of a periodically rated meter: no wallet movement now, but its
    period's counters (``periodic_bounds``), in the caller's transaction."""
    check_open(ctx, period)
    prices = periodic_prices(ctx, data.properties)
    if prices:
        counters = PeriodicCounters([(ctx, period, prices)], now)
        counters.take(ctx, data, period, prices)
        counters.write()  # rolled back with the transaction if the event id was taken
    body = periodic_body(ctx, data)
    insert_event(ctx, data, **periodic_fields(period, body, now))
    return Outcome(status_code=201, body=body)


def _spend_record(
    ctx: Context, charge: Charge, period: Period, data: EventData, now: datetime
) -> None:
    spend_service.spend_record(
        customer_id=ctx.customer_id,
        currency=ctx.currency,
        value=charge.spend,
        period=(ctx.current_period_start, ctx.current_period_end)
        if period[0] == ctx.current_period_start
        else period,
        now=now,
        event_id=data.id,
        enforce=True,
        at=data.timestamp,  # the window of the event's time, as spend_in_window counts it
        wallet_id=ctx.wallet_id,
    )


def charge_locked(
    ctx: Context,
    data: EventData,
    period: Period,
    price: CachedPrice | None,
    now: datetime,
    *,
    reads: DatabaseReads = DATABASE_READS,
    locked: dict[str, Account] | None = None,
) -> Outcome:
    """Charge one event inside the caller's transaction. ``locked``: the wallet's accounts,
    already locked by a batch (with ``reads``, its in-memory reads)."""
    check_open(ctx, period)
    assets = {ctx.unit} | ({price.asset} if price else set())
    loaded = None
    if locked is None:
        accounts, loaded, _ = reads.lock_and_load(
            ctx,
            [ctx.unit, *([price.asset] if price else [])],
            min(now, data.timestamp),
            period,
            price,
        )
    else:
        accounts = {code: locked[code] for code in sorted(assets)}
    if holds_release_expired(wallet_id=ctx.wallet_id, accounts=accounts, now=now):
        reads.reload(ctx.wallet_id)
        loaded = None  # released holds changed the grants: read them again
    if price is not None and ensure_allowance(
        ctx, price, accounts[ctx.unit], period[0], period[1], now
    ):
        reads.reload(ctx.wallet_id)
        loaded = None
    decimals = known_decimals(ctx, price)
    try:
        charge = decide(ctx, data, accounts, period, price, now, reads=reads, loaded=loaded)
        charge.spend = spend_service.value_in_currency(charge.amount, charge.asset, ctx.currency)
        if ctx.has_limit:
            _spend_record(ctx, charge, period, data, now)
    except Declined as declined:
        body = event_body(ctx, data, "declined", None, [], accounts, decimals)
        body["decline_code"] = declined.code
        # the event is recorded with the whole answer: its replay is the same problem
        answer = {**declined_problem(declined), "event": body}
        reads.write_declined(ctx, data, period, answer, declined.code, now)
        return Outcome(status_code=402, body=answer)
    outcome = reads.write_accepted(ctx, data, accounts, period, charge, now, decimals)
    reads.taken(ctx, period, charge)
    return outcome
