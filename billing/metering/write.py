"""What an event writes: its row, its ledger transaction and its period counter — one
statement for an accepted event (the posting and the counter only if the row is new), and
the multi-row forms a batch writes with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from psycopg.types.json import Jsonb

from billing.metering.answers import Outcome, event_body
from billing.metering.context import Context, Period
from billing.metering.errors import Duplicate
from billing.metering.input import EventData
from billing.selectors.prices import CachedPrice
from core.db import JSONB_ARRAY, hot_cursor, int_array, json_array, numeric_texts, text_array
from core.text import plain
from wallets.models import Account, LedgerTransaction
from wallets.services import Funding, Leg
from wallets.services.ledger import Posting, posting

if TYPE_CHECKING:
    from billing.metering.decide import Charge
    from billing.metering.reads import DatabaseReads

ZERO = Decimal(0)


def plan_posting(
    ctx: Context,
    data: EventData,
    accounts: dict[str, Account],
    charge: Charge,
    *,
    overdraw: bool = False,
    kind: str = LedgerTransaction.Kind.DRAW,
    reference: str = "",
    after: str = "",
    reads: DatabaseReads,
    now: datetime | None = None,
) -> tuple[Posting | None, list[Funding]]:
    """The ledger side of what ``decide`` decided: the grants it draws and one balanced
    transaction (None when nothing moves), made at ``now`` (the event's receipt, as the
    database function posts it)."""
    fundings: list[Funding] = []
    legs: list[Leg] = []
    # set whenever money moves (a money plan, a payment or a debt); None only when none does
    money_asset = cast(str, charge.asset)
    for asset, plan in ((ctx.unit, charge.unit_plan), (money_asset, charge.money_plan)):
        for grant, take in plan:
            fundings.append(Funding(grant.pk, asset, take))
            legs.append(Leg(accounts[asset], -take, grant.pk))
    paid = sum((f.amount for f in fundings if f.asset == charge.asset), ZERO)
    debt = ZERO
    if overdraw and charge.asset and charge.amount - paid - charge.accrued > 0:
        debt = charge.amount - paid - charge.accrued
        fundings.append(Funding(None, money_asset, debt))
        legs.append(Leg(accounts[money_asset], -debt, None))
    # The revenue accounts are shared by every customer and made on first use: make (or
    # find) them in one global order, so that two first charges posting revenue in the same
    # two assets in opposite orders (a unit and a price asset) never wait on each other.
    revenue_assets = set()
    if charge.included:
        revenue_assets.add(ctx.unit)
    if paid + debt:
        revenue_assets.add(money_asset)
    revenue = {a: reads.revenue(ctx, a) for a in sorted(revenue_assets)}
    if charge.included:
        legs.append(Leg(revenue[ctx.unit], charge.included))
    if paid + debt:
        legs.append(Leg(revenue[money_asset], paid + debt))
    if not legs:
        return None, fundings
    post = posting(
        kind=kind,
        legs=legs,
        wallet_id=ctx.wallet_id,
        reference=reference or data.id,
        description=f"{ctx.meter_code} × {plain(data.quantity)}",
        metadata={"event": data.id, "meter": ctx.meter_code},
        grant_takes=[(f.grant_id, f.amount) for f in fundings if f.grant_id is not None],
        after=after,
        with_sql=reads.posts_one_by_one,
        now=now,
    )
    return post, fundings


# A period counter adds what its events add (``Charge.counted``): the upsert of one event
# (``COUNTER_SQL``) and of a batch's sums (``BATCH_COUNTERS_SQL``) end alike; ``{events}``
# is what the events column adds.
COUNTER_ADD = """ON CONFLICT (subscription_id, period_start, price_id) DO UPDATE SET
    quantity = billing_usagecounter.quantity + EXCLUDED.quantity,
    included = billing_usagecounter.included + EXCLUDED.included,
    billable = billing_usagecounter.billable + EXCLUDED.billable,
    amount = billing_usagecounter.amount + EXCLUDED.amount,
    accrued = billing_usagecounter.accrued + EXCLUDED.accrued,
    events = billing_usagecounter.events + {events},
    updated_at = EXCLUDED.updated_at
"""
COUNTER_SQL = """
INSERT INTO billing_usagecounter
    (subscription_id, period_start, period_end, price_id, quantity, included, billable,
     amount, accrued, events, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s)
""" + COUNTER_ADD.format(events="1")

BATCH_COUNTERS_SQL = """
INSERT INTO billing_usagecounter
    (subscription_id, period_start, price_id, period_end, quantity, included, billable,
     amount, accrued, events, updated_at)
SELECT *, %b::timestamptz FROM unnest(%b::bigint[], %b::timestamptz[], %b::bigint[],
    %b::timestamptz[], %b::numeric[], %b::numeric[], %b::numeric[], %b::numeric[],
    %b::numeric[], %b::int[])
""" + COUNTER_ADD.format(events="EXCLUDED.events")


def _counter_params(
    ctx: Context, charge: Charge, price: CachedPrice, period: Period, now: datetime
) -> list[Any]:
    return [
        ctx.subscription_id,
        period[0],
        period[1],
        price.id,
        *charge.counted(),
        now,
    ]


EVENT_COLUMNS = (
    "event_id, customer_id, subscription_id, meter_id, quantity, timestamp, properties, status, "
    "decline_code, period_start, included, billable, amount, asset_id, accrued, "
    "ledger_transaction_id, price_id, hold_id, request_hash, response, received_at"
)

INSERT_EVENT_SQL = (
    f"INSERT INTO billing_usageevent ({EVENT_COLUMNS}) "  # noqa: S608 - fixed text
    f"VALUES ({', '.join(['%s'] * 21)}) ON CONFLICT (event_id) DO NOTHING RETURNING id"
)

EVENT_TYPES = (
    "varchar bigint bigint bigint numeric timestamptz jsonb varchar varchar timestamptz "
    "numeric numeric numeric varchar numeric bigint bigint varchar varchar jsonb timestamptz"
).split()  # of EVENT_COLUMNS, in order

BATCH_EVENTS_SQL = (
    f"INSERT INTO billing_usageevent ({EVENT_COLUMNS}) "  # noqa: S608 - fixed text
    "SELECT * FROM unnest("
    + ", ".join(JSONB_ARRAY if t == "jsonb" else f"%b::{t}[]" for t in EVENT_TYPES)
    + ") ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)

# how a batch passes a column of each type
ARRAY_FORMS: dict[str, Callable[[list[Any]], Any]] = {
    "numeric": numeric_texts,
    "jsonb": json_array,
    "bigint": int_array,
    "varchar": text_array,
    "timestamptz": list,
}


class EventRow(NamedTuple):
    """An event a batch decided, to be written with the others (``batch_event_columns``)."""

    status: str
    code: str  # the decline code
    ctx: Context
    data: EventData
    period: tuple[datetime, datetime]
    charge: Charge | None
    post: Posting | None  # the ledger transaction of an accepted charge that moves value
    body: dict[str, Any]  # the stored answer


def batch_event_columns(rows: list[EventRow], txn_ids: dict[int, int], now: datetime) -> list:
    """``BATCH_EVENTS_SQL``'s parameters for ``rows``, column by column: the columns of
    ``_event_params``, each in the form its type is passed in (``ARRAY_FORMS``)."""
    charges = [row.charge for row in rows]
    datas = [row.data for row in rows]
    ctxs = [row.ctx for row in rows]
    columns_: list[list[Any]] = [
        [data.id for data in datas],
        [ctx.customer_id for ctx in ctxs],
        [ctx.subscription_id for ctx in ctxs],
        [ctx.meter_id for ctx in ctxs],
        [data.quantity for data in datas],
        [data.timestamp for data in datas],
        [data.properties for data in datas],
        [row.status for row in rows],
        [row.code for row in rows],
        [row.period[0] for row in rows],
        [ZERO if c is None else c.included for c in charges],
        [ZERO if c is None else c.billable for c in charges],
        [ZERO if c is None else c.amount for c in charges],
        [None if c is None else c.asset for c in charges],
        [ZERO if c is None else c.accrued for c in charges],
        [None if row.post is None else txn_ids[id(row.post)] for row in rows],
        [None if c is None or c.price is None else c.price.id for c in charges],
        [""] * len(rows),
        [data.hash() for data in datas],
        [row.body for row in rows],
        [now] * len(rows),
    ]
    return [ARRAY_FORMS[kind](column) for kind, column in zip(EVENT_TYPES, columns_, strict=True)]


# the same as the first part of a statement that then posts its ledger transaction: the
# event takes the transaction's id first (the foreign key is checked at commit), and the
# posting happens only if the event row was inserted (see ``posting(after=...)``)
INSERT_EVENT_THEN_POSTING = (
    f"INSERT INTO billing_usageevent ({EVENT_COLUMNS}) "  # noqa: S608 - fixed text
    f"VALUES ({', '.join(['%s'] * 15)}, "
    "nextval(pg_get_serial_sequence('wallets_ledgertransaction', 'id')), "
    f"{', '.join(['%s'] * 5)}) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING id, ledger_transaction_id AS txn_id"
)

COUNTER_AFTER_EVENT = COUNTER_SQL.replace(
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s)", ""
).replace(
    "events, updated_at)",
    "events, updated_at) SELECT %s::bigint, %s::timestamptz, %s::timestamptz, %s::bigint, "
    "%s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::numeric, 1, %s::timestamptz "
    "FROM event",
)


def _event_params(
    ctx: Context,
    data: EventData,
    *,
    status: str,
    code: str,
    period_start: datetime | None,
    charge: Charge | None,
    txn_id: int | None,
    body: dict,
    now: datetime,
    hold_id: str = "",
) -> list:
    return [
        data.id,
        ctx.customer_id,
        ctx.subscription_id,
        ctx.meter_id,
        data.quantity,
        data.timestamp,
        Jsonb(data.properties),
        status,
        code,
        period_start,
        charge.included if charge else ZERO,
        charge.billable if charge else ZERO,
        charge.amount if charge else ZERO,
        charge.asset if charge else None,
        charge.accrued if charge else ZERO,
        txn_id,
        charge.price.id if charge and charge.price else None,
        hold_id,
        data.hash(),
        Jsonb(body),
        now,
    ]


def insert_event(ctx: Context, data: EventData, **fields: Any) -> int:
    with hot_cursor() as cursor:
        cursor.execute(INSERT_EVENT_SQL, _event_params(ctx, data, **fields))
        row = cursor.fetchone()
    if row is None:
        raise Duplicate()
    return row[0]


def periodic_fields(period: Period, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The event row fields of an event rated later (``_event_params``): accepted, with
    nothing charged yet."""
    return {
        "status": "accepted",
        "code": "",
        "period_start": period[0],
        "charge": None,
        "txn_id": None,
        "body": body,
        "now": now,
    }


def accepted_event_write(
    ctx: Context,
    data: EventData,
    accounts: dict[str, Account],
    period: Period,
    charge: Charge,
    now: datetime,
    decimals: dict[str, tuple[bool, int]],
    reads: DatabaseReads,
    *,
    hold_id: str = "",
    overdraw: bool = False,
    kind: str = LedgerTransaction.Kind.DRAW,
    reference: str = "",
) -> Outcome:
    """Everything an accepted event writes — its row, then (only if the row was new) the
    grants, ledger transaction and entries, account balances and the period counter — in
    one statement. A concurrent duplicate therefore writes nothing (``Duplicate``)."""
    post, fundings = plan_posting(
        ctx,
        data,
        accounts,
        charge,
        after="event",
        reads=reads,
        overdraw=overdraw,
        kind=kind,
        reference=reference,
        now=now,
    )
    if post is not None:
        post.applied()  # the balances in the answer are the ones after this charge
    body = event_body(ctx, data, "accepted", charge, fundings, accounts, decimals)
    if hold_id:
        body["hold"] = hold_id
    event_params = _event_params(
        ctx,
        data,
        status="accepted",
        code="",
        period_start=period[0],
        charge=charge,
        txn_id=None,
        body=body,
        now=now,
        hold_id=hold_id,
    )
    if post is not None:
        del event_params[15]  # the transaction's id comes from its sequence
        ctes = [f"event AS ({INSERT_EVENT_THEN_POSTING})", post.ctes]
        params = event_params + post.params
    else:
        ctes = [f"event AS ({INSERT_EVENT_SQL})"]
        params = event_params
    if charge.price is not None:
        ctes.append(f"counter AS ({COUNTER_AFTER_EVENT} RETURNING 1)")
        params += _counter_params(ctx, charge, charge.price, period, now)
    if hold_id:  # a capture: the hold records its transaction and event
        txn = "(SELECT txn_id FROM event)" if post is not None else "NULL::bigint"
        ctes.append(
            f"captured AS (UPDATE wallets_hold SET capture_transaction_id = {txn}, "  # noqa: S608
            "metadata = metadata || jsonb_build_object('event', %s::text) "
            "WHERE id = %s RETURNING 1)"
        )
        params += [data.id, hold_id]
    final = "SELECT id, txn_id FROM event" if post is not None else "SELECT id, NULL FROM event"
    # (a plain statement, then Django's COMMIT: sending the COMMIT with it in a pipeline
    # saves a round trip but costs psycopg more CPU than the round trip did)
    with hot_cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {final}", params)
        row = cursor.fetchone()
    if row is None:
        if post is not None:
            post.unapplied()
        raise Duplicate()  # nothing was written
    return Outcome(status_code=201, body=body, txn_id=row[1])
