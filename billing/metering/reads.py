"""What a decision reads under the account locks: the eligible grants and the period
counter of one event (``DatabaseReads``), in one statement, pipelined with the locks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from billing.metering.answers import Outcome
from billing.metering.context import Context, Period
from billing.metering.decide import NO_TOTALS, Charge, Loaded, Totals
from billing.metering.input import EventData
from billing.metering.write import accepted_event_write, insert_event
from billing.selectors.prices import CachedPrice
from core.db import columns, hot_cursor, hot_pipeline, instances
from wallets.models import Account, Grant
from wallets.services import accounts_lock, system_account
from wallets.services.draws import eligible_grants_by_asset, eligible_where, in_burn_down_order
from wallets.services.ledger import ACCOUNTS_LOCK_SQL


class DatabaseReads:
    """What ``decide`` reads, read when needed: one event's charge."""

    posts_one_by_one = True  # each posting is written by its own statement

    def load(
        self,
        ctx: Context,
        assets: list[str],
        valid_at: datetime,
        period: Period,
        price: CachedPrice | None,
    ) -> Loaded:
        """The eligible grants of ``assets`` (burn-down order) and the period's counter
        totals so far for ``price``, in one statement (the account locks are held)."""
        if price is None:
            grants = eligible_grants_by_asset(
                wallet_id=ctx.wallet_id, assets=assets, meter=ctx.meter_code, now=valid_at
            )
            return grants, NO_TOTALS
        with hot_cursor() as cursor:
            cursor.execute(
                GRANTS_AND_COUNTER_SQL, _load_params(ctx, assets, valid_at, period, price)
            )
            rows = cursor.fetchall()
        return _loaded(ctx, assets, rows)

    def lock_and_load(
        self,
        ctx: Context,
        assets: list[str],
        valid_at: datetime,
        period: Period,
        price: CachedPrice | None,
        *,
        lock: Iterable[str] = (),
        between: tuple[str, list[Any]] | None = None,
    ) -> tuple[dict[str, Account], Loaded | None, list[tuple[Any, ...]] | None]:
        """Lock the wallet's accounts in ``assets`` (and ``lock``) and read what ``load``
        reads, in one round trip: the statements go in one pipeline, and PostgreSQL runs the
        read only once the locks are granted, so it sees what the previous holder committed.
        ``between``: a statement (SQL, parameters) run after the locks and before the read,
        whose rows are returned too. Returns the locked accounts, the loaded reads (None
        when an account had to be made first) and ``between``'s rows (None without it)."""
        codes = sorted(set(assets) | set(lock))
        if price is None:
            accounts = accounts_lock(ctx.wallet_id, codes)
            if between is None:
                return accounts, None, None
            with hot_cursor() as cursor:
                cursor.execute(*between)
                return accounts, None, cursor.fetchall()
        params = _load_params(ctx, assets, valid_at, period, price)
        with hot_pipeline(3 if between else 2) as cursors:
            cursors[0].execute(ACCOUNTS_LOCK_SQL, [ctx.wallet_id, codes])
            if between is not None:
                cursors[1].execute(*between)
            cursors[-1].execute(GRANTS_AND_COUNTER_SQL, params)
            locked_rows, rows = cursors[0].fetchall(), cursors[-1].fetchall()
            between_rows = cursors[1].fetchall() if between is not None else None
        accounts = {a.asset_id: a for a in instances(Account, locked_rows)}
        if len(accounts) != len(codes):  # a first charge in an asset: make its account
            # and lock it too (it is newer than the others, so id order is kept)
            accounts.update(accounts_lock(ctx.wallet_id, set(codes) - set(accounts)))
            return accounts, None, between_rows
        return accounts, _loaded(ctx, assets, rows), between_rows

    def taken(self, ctx: Context, period: Period, charge: Charge) -> None:
        """An accepted charge was written (nothing to remember for one event)."""

    def revenue(self, ctx: Context, asset: str) -> Account:
        if asset in ctx.revenue:  # read with the event's context (system accounts stay)
            return Account(
                id=ctx.revenue[asset], system_code=Account.System.REVENUE, asset_id=asset
            )
        return system_account(Account.System.REVENUE, asset)

    def write_declined(
        self,
        ctx: Context,
        data: EventData,
        period: Period,
        body: dict[str, Any],
        code: str,
        now: datetime,
    ) -> None:
        insert_event(
            ctx,
            data,
            status="declined",
            code=code,
            period_start=period[0],
            charge=None,
            txn_id=None,
            body=body,
            now=now,
        )

    def write_accepted(
        self,
        ctx: Context,
        data: EventData,
        accounts: dict[str, Account],
        period: Period,
        charge: Charge,
        now: datetime,
        decimals: dict[str, tuple[bool, int]],
    ) -> Outcome:
        return accepted_event_write(ctx, data, accounts, period, charge, now, decimals, self)

    def reload(self, wallet_id: int) -> None:
        """The wallet got a new grant."""


def _load_params(
    ctx: Context, assets: list[str], valid_at: datetime, period: Period, price: CachedPrice
) -> list[Any]:
    return [
        ctx.subscription_id,
        period[0],
        price.id,
        ctx.wallet_id,
        sorted(set(assets)),
        valid_at,
        ctx.meter_code,
    ]


def _loaded(ctx: Context, assets: list[str], rows: list[tuple[Any, ...]]) -> Loaded:
    totals = Totals(*rows[0][0]) if rows[0][0] is not None else NO_TOTALS
    grants = instances(Grant, [row[1:] for row in rows if row[1] is not None])
    return in_burn_down_order(grants, assets, ctx.meter_code), totals


GRANTS_AND_COUNTER_SQL = (
    "SELECT (SELECT ARRAY[quantity, included, billable, amount, accrued] "  # noqa: S608
    "FROM billing_usagecounter WHERE subscription_id = %s "
    f"AND period_start = %s AND price_id = %s), {columns(Grant, 'g')} "
    "FROM (SELECT 1) AS one LEFT JOIN wallets_grant g ON g.wallet_id = %s "
    f"AND g.asset_id = ANY(%s) AND {eligible_where('g')}"
)

DATABASE_READS = DatabaseReads()
