"""Holds for usage whose cost is known only afterwards (an LLM call whose output length is
unknown): reserve the estimated cost in burn-down order, then capture the actual quantity as
a usage event (less than, equal to, or more than held), void, or let it expire.

The reservation follows the charge of an event: units from the meter's allowance first, the
rest priced over the period's cumulative billable quantity and reserved from grants in the
price's asset. A hard spend limit declines a hold whose estimate would pass it. A capture
charges like an event, drawing first from the grants the hold reserved; it cannot be declined
(the work is done): what the wallet cannot pay becomes debt, and the spend counts."""

from __future__ import annotations

from copy import copy
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.metering import database
from billing.metering import spend as spend_service
from billing.metering.answers import (
    Outcome,
    decimals_of,
    declined_problem,
    hold_body,
    hold_metadata,
    known_decimals,
)
from billing.metering.context import (
    Context,
    Period,
    check_open,
    event_period,
    key_checked,
    lookup,
    resolve,
)
from billing.metering.decide import decide, realtime
from billing.metering.errors import Duplicate
from billing.metering.input import EventData
from billing.metering.periodic_bounds import (
    PeriodicCounters,
    periodic_estimate_check,
    periodic_prices,
)
from billing.metering.reads import DATABASE_READS
from billing.metering.write import accepted_event_write
from billing.models import UsageEvent
from billing.selectors.prices import CachedPrice, price_for_event
from core.db import columns, hot_cursor, hot_pipeline, instances
from core.errors import Declined, IdempotencyConflict, NotFound, ValidationFailed
from core.text import plain
from wallets.errors import HoldNotPending
from wallets.models import Hold, HoldAllocation, LedgerTransaction
from wallets.services import (
    HoldLeg,
    accounts_lock,
    hold_settle,
    holds_release_expired,
    idempotency_claim,
    idempotency_store,
    ledger_hold,
)
from wallets.services.draws import is_eligible
from wallets.services.holds import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    SETTLE_SQL,
    hold_settled,
    settle_params,
)
from wallets.services.idempotency import IdempotencySlot

ZERO = Decimal(0)


def hold_authorize(
    *,
    data: EventData,
    expires_in: int = DEFAULT_HOLD_SECONDS,
    now: datetime | None = None,
    api_key_hash: str | None = None,
) -> Outcome:
    """Reserve the estimated cost of ``data`` (its id is the hold id). 201 with the hold, or
    a 402 problem when the wallet cannot cover it or a hard spend limit would be passed
    (nothing is recorded then). Idempotent by the hold id. ``api_key_hash``: the caller's
    key, checked in the first query (``KeyRefused``), as for an event."""
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 0 < expires_in <= MAX_HOLD_SECONDS
    ):
        raise ValidationFailed(
            f"expires_in must be 1 to {MAX_HOLD_SECONDS} seconds.",
            errors={"expires_in": [f"1–{MAX_HOLD_SECONDS} seconds."]},
        )
    now = now or timezone.now()
    ctx = resolve(data, api_key_hash=api_key_hash)
    period = event_period(ctx, data, now)
    price = price_for_event(ctx.version_id, ctx.meter_id, data.properties)
    if not realtime(ctx, price):
        # rated periodically: nothing to reserve but the units, within the period's bound
        periodic_estimate_check(ctx, data, period, periodic_prices(ctx, data.properties))
        price = None
    request = {"event": data.hash(), "expires_in": expires_in}
    try:
        outcome = database.hold_reserve(ctx, data, period, price, now, expires_in, request)
        if outcome is not None:
            return outcome
        with transaction.atomic():
            slot = idempotency_claim(scope="billing.hold", key=data.id, request=request)
            if slot.replay:
                return Outcome(status_code=slot.status_code, body=slot.result, replayed=True)
            return _reserve(ctx, data, period, price, now, expires_in, slot)
    except IntegrityError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        if diag is None or diag.constraint_name != "wallets_hold_pkey":
            raise
        taken = IdempotencyConflict(f"A hold '{data.id}' exists.", errors={"id": ["Taken."]})
        raise taken from None


def _reserve(
    ctx: Context,
    data: EventData,
    period: Period,
    price: CachedPrice | None,
    now: datetime,
    expires_in: int,
    slot: IdempotencySlot,
) -> Outcome:
    """The reservation of ``hold_authorize``, inside its transaction: lock and read in one
    round trip, decide as an event's charge does, then write the hold and its idempotency
    record in one more."""
    check_open(ctx, period)
    assets = [ctx.unit, *([price.asset] if price else [])]
    accounts, loaded, _ = DATABASE_READS.lock_and_load(
        ctx, assets, min(now, data.timestamp), period, price
    )
    if holds_release_expired(wallet_id=ctx.wallet_id, accounts=accounts, now=now):
        loaded = None  # released holds changed the grants: read them again
    # the reservation draws from the grants the charge was decided on (copies: deciding
    # may change them), those that may pay now
    grants = None
    if loaded is not None:
        grants = {
            asset: [copy(g) for g in found if is_eligible(g, ctx.meter_code, now)]
            for asset, found in loaded[0].items()
        }
    try:
        # postpaid: a shortfall the invoice will carry (charge.accrued) is not reserved
        charge = decide(
            ctx, data, accounts, period, price, now, reads=DATABASE_READS, loaded=loaded
        )
        value = spend_service.value_in_currency(charge.amount, charge.asset, ctx.currency)
        _check_spend(ctx, value, period, now)
    except Declined as declined:
        # nothing is recorded, the idempotency claim included: the same hold id may be
        # tried again (after a top-up), and a replay must never find an empty claim
        transaction.set_rollback(True)
        return Outcome(status_code=402, body=declined_problem(declined))
    legs = [HoldLeg(ctx.unit, charge.included, ctx.meter_code, partial=True)]
    if charge.asset and charge.amount - charge.accrued > 0:
        legs.append(
            HoldLeg(charge.asset, charge.amount - charge.accrued, ctx.meter_code, partial=True)
        )
    # the hold, its idempotency record and the COMMIT: one round trip
    with hot_pipeline(0, commit=True):
        hold, reserved = ledger_hold(
            hold_id=data.id,
            wallet_id=ctx.wallet_id,
            accounts=accounts,
            legs=[leg for leg in legs if leg.amount > 0],
            expires_at=now + timedelta(seconds=expires_in),
            now=now,
            metadata={
                **hold_metadata(ctx, data),
                "estimate": {
                    "included": plain(charge.included),
                    "billable": plain(charge.billable),
                    "amount": plain(charge.amount),
                    "asset": charge.asset,
                    "accrued": plain(charge.accrued),
                },
            },
            grants=grants,
        )
        body = hold_body(hold, reserved, known_decimals(ctx, price))
        idempotency_store(slot, result=body, status_code=201)
    return Outcome(status_code=201, body=body)


def _check_spend(ctx: Context, value: Decimal, period: Period, now: datetime) -> None:
    """A hold whose estimate would pass a hard limit is declined; nothing is recorded."""
    from billing.models import SpendCounter, SpendLimit

    if not ctx.has_limit:
        return
    limit = SpendLimit.objects.filter(customer_id=ctx.customer_id).first()
    if limit is None or limit.mode != SpendLimit.Mode.HARD or value <= 0:
        return
    start, end = spend_service.window_bounds(limit.window, at=now, period=period)
    spent = (
        SpendCounter.objects.filter(
            customer_id=ctx.customer_id, window=limit.window, window_start=start
        )
        .values_list("spent", flat=True)
        .first()
    )
    if spent is None:
        spent = spend_service.spend_in_window(customer_id=ctx.customer_id, start=start, end=end)
    held = spend_service.holds_expected_spend(
        wallet_id=ctx.wallet_id, currency=ctx.currency, now=now
    )
    if spent + held + value > limit.amount:
        raise spend_service.SpendLimitExceeded(
            f"The hold's estimate of {plain(value)} {ctx.currency} would pass the limit.",
            extra={
                "limit": limit.amount,
                "spent": spent,
                "held": held,
                "currency": ctx.currency,
            },
        )


def hold_get(*, hold_id: str, api_key_hash: str | None = None) -> Hold:
    """The usage hold ``hold_id`` with its allocations, in one query. With ``api_key_hash``,
    the same query checks the caller's key (``KeyRefused``) before anything is answered."""
    with hot_cursor(binary=True) as cursor:  # timestamps loaded in C
        if api_key_hash is None:
            cursor.execute(HOLD_GET_SQL, [hold_id])
        else:
            cursor.execute(HOLD_GET_KEYED_SQL, [api_key_hash, hold_id])
        row = cursor.fetchone()
    if row is not None and api_key_hash is not None:
        *row, key_id, scopes, last_used_at = row
        key_checked(key_id, scopes, last_used_at)
    hold = None
    if row is not None:
        # the hold's columns, then its allocations' as four arrays
        *hold_columns, ids, grant_ids, assets, amounts = row
        hold = instances(Hold, [hold_columns])[0]
    if hold is None or "customer" not in (hold.metadata or {}):
        raise NotFound(f"No hold '{hold_id}'.")
    hold._prefetched_objects_cache = {  # type: ignore[attr-defined]  # not in the stubs
        "allocations": [
            HoldAllocation(id=pk, hold_id=hold.pk, grant_id=grant, asset_id=asset, amount=amount)
            for pk, grant, asset, amount in zip(ids, grant_ids, assets, amounts, strict=True)
        ]
    }
    return hold


HOLD_GET_SQL = f"""
SELECT {columns(Hold, "h")},
       ARRAY(SELECT id FROM wallets_holdallocation WHERE hold_id = h.id ORDER BY id),
       ARRAY(SELECT grant_id FROM wallets_holdallocation WHERE hold_id = h.id ORDER BY id),
       ARRAY(SELECT asset_id FROM wallets_holdallocation WHERE hold_id = h.id ORDER BY id),
       ARRAY(SELECT amount FROM wallets_holdallocation WHERE hold_id = h.id ORDER BY id)
FROM wallets_hold h WHERE h.id = %s
"""  # noqa: S608 - column names only

# the same, with the caller's API key (by its hash) in the same query
HOLD_GET_KEYED_SQL = HOLD_GET_SQL.replace(
    "\nFROM wallets_hold h WHERE h.id = %s",
    ", k.id, k.scopes, k.last_used_at\nFROM wallets_hold h "
    "LEFT JOIN billing_apikey k ON k.key_hash = %s AND k.revoked_at IS NULL\nWHERE h.id = %s",
)


def hold_json(hold: Hold) -> dict[str, Any]:
    body = hold_body(hold)
    if hold.status == Hold.Status.PENDING and hold.expires_at <= timezone.now():
        body["status"] = "expired"  # treated as expired on read, before the sweep
    return body


def hold_capture_usage(
    *,
    hold_id: str,
    quantity: Decimal,
    event_id: str | None = None,
    now: datetime | None = None,
    api_key_hash: str | None = None,
) -> Outcome:
    """Capture a pending hold with the actual quantity, as the usage event ``event_id``
    (default: the hold id). 200 with the hold and its event; ``HoldNotPending`` when it was
    captured, voided or has expired. Capturing again with the same event returns the first
    answer. ``api_key_hash``: the caller's key, checked as the hold is read
    (``KeyRefused``), as for an event."""
    now = now or timezone.now()
    hold = hold_get(hold_id=hold_id, api_key_hash=api_key_hash)
    meta = hold.metadata
    data = EventData(
        id=event_id or hold_id,
        customer=meta["customer"],
        meter=meta["meter"],
        quantity=quantity,
        timestamp=now,
        properties=meta.get("properties", {}),
    )
    if hold.status != Hold.Status.PENDING:
        return _settled_answer(hold, data)
    replay: Outcome | bool | None  # True: the event id is taken with another body
    try:
        replay, ctx = lookup(data)  # the event id's stored answer, if it is taken
    except IdempotencyConflict:
        replay = True
    if replay is not None:
        # taken by this very capture, if a concurrent one won the race since the hold was
        # read: answer as for a hold no longer pending; else by another event
        hold = hold_get(hold_id=hold_id)
        if hold.status != Hold.Status.PENDING:
            return _settled_answer(hold, data)
        raise _event_id_taken(data)
    assert ctx is not None  # a lookup without a replay finds the context or raises
    period = event_period(ctx, data, now)
    price = price_for_event(ctx.version_id, ctx.meter_id, data.properties)
    periodic = []
    if not realtime(ctx, price):
        periodic = periodic_prices(ctx, data.properties)  # counted and bounded below
        price = None
    known = known_decimals(ctx, price)
    try:
        outcome = None
        if not periodic:  # the database function knows nothing of periodic counters
            outcome = database.event_charge(ctx, data, period, price, now, hold=hold)
        if outcome is not None:
            hold.status, hold.resolved_at = Hold.Status.CAPTURED, now
            return _captured(hold, meta, data, outcome, known)
        with transaction.atomic():
            check_open(ctx, period)
            if periodic:  # refused (the hold still pending) before anything else
                counters = PeriodicCounters([(ctx, period, periodic)], now)
                counters.take(ctx, data, period, periodic)
                counters.write()
            # lock, move the hold out of pending and give back what it reserved, and read
            # the grants and the period counter: one round trip
            accounts, loaded, settled = DATABASE_READS.lock_and_load(
                ctx,
                [ctx.unit, *([price.asset] if price else [])],
                min(now, data.timestamp),
                period,
                price,
                lock={a.asset_id for a in hold.allocations.all()},  # prefetched
                between=(SETTLE_SQL, settle_params(hold, Hold.Status.CAPTURED, now, True)),
            )
            assert settled is not None  # ``between`` was given: its rows are returned
            released = hold_settled(hold, Hold.Status.CAPTURED, now, settled, accounts)
            charge = decide(
                ctx,
                data,
                accounts,
                period,
                price,
                now,
                prefer=released,
                overdraw=True,
                reads=DATABASE_READS,
                loaded=loaded,
            )
            charge.spend = spend_service.value_in_currency(
                charge.amount, charge.asset, ctx.currency
            )
            if ctx.has_limit:
                spend_service.spend_record(
                    customer_id=ctx.customer_id,
                    currency=ctx.currency,
                    value=charge.spend,
                    period=period,
                    now=now,
                    event_id=data.id,
                    enforce=False,
                )
            outcome = accepted_event_write(
                ctx,
                data,
                accounts,
                period,
                charge,
                now,
                decimals_of(set(accounts), known),
                DATABASE_READS,
                hold_id=hold.pk,
                overdraw=True,
                kind=LedgerTransaction.Kind.CAPTURE,
                reference=hold.pk,
            )
    except Duplicate:
        raise _event_id_taken(data) from None
    return _captured(hold, meta, data, outcome, known)


def _captured(
    hold: Hold,
    meta: dict[str, Any],
    data: EventData,
    outcome: Outcome,
    known: dict[str, tuple[bool, int]],
) -> Outcome:
    hold.metadata = {**meta, "event": data.id}  # as the capture's statement wrote them
    hold.capture_transaction_id = outcome.txn_id
    return Outcome(status_code=200, body={**hold_body(hold, known=known), "event": outcome.body})


def _settled_answer(hold: Hold, data: EventData) -> Outcome:
    """The answer to capturing a hold no longer pending: the first answer when this same
    capture (event id and quantity) captured it, else ``HoldNotPending``."""
    if hold.status == Hold.Status.CAPTURED:
        # the partial index of captures (``event_hold``) answers this
        done = (
            UsageEvent.objects.filter(hold_id=hold.pk)
            .exclude(hold_id="")
            .values("event_id")
            .first()
        )
        if done and done["event_id"] == data.id:
            stored = UsageEvent.objects.get(event_id=data.id)
            if stored.quantity == data.quantity:
                return Outcome(
                    status_code=200,
                    body={**hold_body(hold), "event": stored.response},
                    replayed=True,
                )
    raise HoldNotPending(f"Hold {hold.pk} is {hold.status}.", extra={"hold_status": hold.status})


def _event_id_taken(data: EventData) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"The event id '{data.id}' is taken.", errors={"event_id": ["Already used."]}
    )


def hold_cancel(*, hold_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Void a pending hold: everything it reserved is released. A hold that is no longer
    pending (captured, voided — even by a concurrent void — or expired) is ``HoldNotPending``:
    the move out of pending is a conditional UPDATE under the wallet's account locks."""
    now = now or timezone.now()
    hold = hold_get(hold_id=hold_id)
    if hold.status == Hold.Status.PENDING and hold.expires_at <= now:
        raise HoldNotPending(f"Hold {hold_id} is expired.", extra={"hold_status": "expired"})
    if hold.status != Hold.Status.PENDING:
        raise HoldNotPending(
            f"Hold {hold_id} is {hold.status}.", extra={"hold_status": hold.status}
        )
    with transaction.atomic():
        assets = {a.asset_id for a in hold.allocations.all()}  # read with the hold
        accounts = accounts_lock(hold.wallet_id, assets)
        hold_settle(hold=hold, status=Hold.Status.VOIDED, accounts=accounts, now=now)
    return hold_body(hold)
