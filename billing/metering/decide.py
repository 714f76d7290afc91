"""The decision of a charge, with reads only (the caller holds the account locks): units
from the meter's allowance and unit grants first, the billable rest priced over the
period's cumulative billable quantity, paid from grants in burn-down order (a hold's grants
first for its capture), a shortfall accrued or declined, all within the bounds of what
Billfold records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from billing.metering.context import Context, Period, charged_quantity
from billing.metering.input import EventData
from billing.models import Subscription
from billing.selectors.prices import CachedPrice
from core.errors import AmountTooLarge
from core.text import plain
from plans.models import Meter
from plans.pricing import increment_amount, rated_periodically
from wallets.errors import InsufficientFunds, NegativeBalance
from wallets.models import Account, Grant
from wallets.services import ledger_grant
from wallets.services.amounts import MAX_AMOUNT
from wallets.services.draws import plan_draw

if TYPE_CHECKING:
    from billing.metering.reads import DatabaseReads

ZERO = Decimal(0)


@dataclass
class Charge:
    included: Decimal = ZERO
    billable: Decimal = ZERO
    amount: Decimal = ZERO
    accrued: Decimal = ZERO
    asset: str | None = None
    unit_plan: list[tuple[Grant, Decimal]] = field(default_factory=list)
    money_plan: list[tuple[Grant, Decimal]] = field(default_factory=list)
    price: CachedPrice | None = None
    spend: Decimal = ZERO

    def counted(self) -> Totals:
        """What the charge adds to its period counter: every unit to ``quantity``, the
        paid part to ``amount`` and the accrued part to ``accrued``."""
        return Totals(
            self.included + self.billable,
            self.included,
            self.billable,
            self.amount - self.accrued,
            self.accrued,
        )


class Totals(NamedTuple):
    """A period counter's totals (all zero before its first event), in its columns' order."""

    quantity: Decimal = ZERO
    included: Decimal = ZERO
    billable: Decimal = ZERO
    amount: Decimal = ZERO  # paid from the wallet
    accrued: Decimal = ZERO

    def after(self, charge: Charge) -> Totals:
        """The totals once ``charge`` is counted (as the counter's upsert adds it)."""
        added = charge.counted()
        return Totals(
            self.quantity + added.quantity,
            self.included + added.included,
            self.billable + added.billable,
            self.amount + added.amount,
            self.accrued + added.accrued,
        )


NO_TOTALS = Totals()

# what ``decide`` reads: the eligible grants by asset (burn-down order) and the period's
# counter totals
Loaded = tuple[dict[str, list[Grant]], Totals]


def check_bounds(charge: Charge, totals: Totals) -> None:
    """``AmountTooLarge`` when the charge, or its period counter's totals after it, would
    reach 10^18: every amount Billfold records and invoices stays below it, as the API's
    inputs do (a counter of a price near 10^18 would otherwise take an event of 10^8
    units, and the invoice then could not hold its line)."""
    if charge.price is None:
        return  # no price: nothing charged, no counter
    after = totals.after(charge)
    for name, value in (
        ("charge", charge.amount),
        ("quantity", after.quantity),
        ("billable quantity", after.billable),
        ("amount", after.amount + after.accrued),  # what it paid and what accrued
    ):
        if value >= MAX_AMOUNT:
            what = "charge" if name == "charge" else f"period's {name}"
            raise AmountTooLarge(
                f"The event's {what} would be {plain(value)}: amounts and quantities stay "
                "below 10^18.",
                errors={"quantity": ["Its charge or its period's totals would reach 10^18."]},
            )


def allowance_source(subscription_id: int, price_id: int, period_start: datetime) -> str:
    """The source of the grant of a price's included quantity for one period of a
    subscription: one such grant per period, whichever issues it first (the period's close
    or the first event of a period the close has not reached)."""
    return f"{allowance_prefix(subscription_id)}{price_id}:{period_start.isoformat()}"


def allowance_prefix(subscription_id: int) -> str:
    """What the source of every allowance grant of a subscription starts with."""
    return f"allowance:{subscription_id}:"


def ensure_allowance(
    ctx: Context,
    price: CachedPrice,
    account: Account,
    start: datetime,
    end: datetime,
    now: datetime,
) -> bool:
    """A period the periodic close has not reached yet still gets its allowance."""
    if price.included <= 0 or start <= ctx.current_period_start or end <= now:
        return False
    source = allowance_source(ctx.subscription_id, price.id, start)
    if Grant.objects.filter(source=source).exists():
        return False
    ledger_grant(
        account=account,
        amount=price.included,
        purpose=Grant.Purpose.ALLOWANCE,
        priority=0,
        expires_at=end,
        meters=[ctx.meter_code],
        reference="allowance",
        source=source,
        now=now,
    )
    return True


def realtime(ctx: Context, price: CachedPrice | None) -> bool:
    """Charged event by event: a sum or count meter whose price (if any) is not rated
    periodically (``rated_periodically``). Other events are only recorded, within the
    bounds of what their period may price (``periodic_bounds``, whose prices are those
    this refuses); rating prices them from the period's data."""
    if ctx.aggregation not in Meter.ADDITIVE:
        return False
    return price is None or not rated_periodically(
        aggregation=ctx.aggregation, model=price.spec.model
    )


def decide(
    ctx: Context,
    data: EventData,
    accounts: dict[str, Account],
    period: Period,
    price: CachedPrice | None,
    now: datetime,
    *,
    prefer: dict[str, list[tuple[Grant, Decimal]]] | None = None,
    overdraw: bool = False,
    reads: DatabaseReads,
    loaded: Loaded | None = None,
) -> Charge:
    """Steps 1–4 with reads only (the account rows are locked by the caller), within the
    bounds of what Billfold records (``check_bounds``)."""
    charge = Charge(price=price)
    # a late event may use the grants that were valid when it happened (its period's
    # allowance) as long as the expiry sweep has not closed them yet
    valid_at = min(now, data.timestamp)
    quantity = charged_quantity(ctx, data)
    prefer = prefer or {}
    for account in accounts.values():
        if account.debt > 0 and not overdraw:
            raise NegativeBalance(
                f"The wallet owes {plain(account.debt)} {account.asset_id}; top it up first.",
                extra={"asset": account.asset_id},
            )
    # the grants of both assets in one read (the account locks keep them as read)
    assets = [ctx.unit] + ([price.asset] if price is not None else [])
    grants, totals = loaded or reads.load(ctx, assets, valid_at, period, price)
    # 1. units first
    unit_grants = _with_preferred(grants[ctx.unit], prefer.get(ctx.unit, []))
    if price is not None and price.asset == ctx.unit:
        unit_grants = []  # a price in the meter's own unit: the units are the payment
    charge.unit_plan = plan_draw(unit_grants, quantity)
    charge.included = sum((take for _, take in charge.unit_plan), ZERO)
    charge.billable = quantity - charge.included
    if price is not None and charge.billable != 0:
        # 2. price the billable part over the period's cumulative billable quantity, exact
        # to the ledger's 12 places in every asset (an answer shows it at its decimals)
        charge.amount = increment_amount(
            price.spec, before=totals.billable, quantity=charge.billable
        )
        charge.asset = price.asset
    check_bounds(charge, totals)  # before paying: too large is refused, not declined
    if charge.amount != 0:
        assert price is not None  # an amount is only priced by a price
        _pay(ctx, charge, price, grants, prefer, overdraw)
    return charge


def _pay(
    ctx: Context,
    charge: Charge,
    price: CachedPrice,
    grants: dict[str, list[Grant]],
    prefer: dict[str, list[tuple[Grant, Decimal]]],
    overdraw: bool,
) -> None:
    """Steps 3–4 of ``decide``: pay ``charge.amount``, accrue or decline the shortfall."""
    # 3. pay from grants in burn-down order
    money_grants = _with_preferred(grants[price.asset], prefer.get(price.asset, []))
    if price.asset == ctx.unit:
        money_grants = _after_units(money_grants, charge.unit_plan)
    charge.money_plan = plan_draw(money_grants, charge.amount)
    paid = sum((take for _, take in charge.money_plan), ZERO)
    shortfall = charge.amount - paid
    # 4. shortfall: accrue (postpaid, billing currency), overdraw (a capture), or decline
    if shortfall > 0:
        if accrues(ctx, price):
            charge.accrued = shortfall
        elif not overdraw:
            raise InsufficientFunds(
                f"The wallet can pay {plain(paid)} of {plain(charge.amount)} {price.asset}.",
                extra={"asset": price.asset, "available": paid},
            )


def accrues(ctx: Context, price: CachedPrice) -> bool:
    """Whether a shortfall accrues to the period's invoice rather than declining: a postpaid
    (``invoice``) subscription, a price in its billing currency."""
    return ctx.overage == Subscription.Overage.INVOICE and price.asset == ctx.currency


def _with_preferred(grants: list[Grant], preferred: list[tuple[Grant, Decimal]]) -> list[Grant]:
    """A hold's grants first (even if they expired since), then the rest in burn-down order."""
    if not preferred:
        return grants
    ids = {g.pk for g, _ in preferred}
    return [g for g, _ in preferred] + [g for g in grants if g.pk not in ids]


def _after_units(grants: list[Grant], unit_plan: list[tuple[Grant, Decimal]]) -> list[Grant]:
    taken = {g.pk: t for g, t in unit_plan}
    for grant in grants:
        grant.remaining -= taken.get(grant.pk, ZERO)
    return grants
