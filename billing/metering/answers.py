"""What the charge path answers and stores: the body of an event and of a hold, the 402
problem of a declined one, and the stored answer a replay returns (keys in the order first
given)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from billing.metering.input import EventData
from billing.metering.spend import SpendLimitExceeded
from billing.models import UsageEvent
from core.errors import Declined, IdempotencyConflict, NotFound
from core.text import fixed_text, plain
from wallets.errors import InsufficientFunds, NegativeBalance
from wallets.models import Account, Hold
from wallets.services import Funding

if TYPE_CHECKING:
    from billing.metering.context import Context
    from billing.metering.decide import Charge
    from billing.selectors.prices import CachedPrice

ZERO = Decimal(0)


@dataclass
class Outcome:
    """What the API answers: ``status_code`` and ``body`` (the stored response)."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False
    event: UsageEvent | None = None
    txn_id: int | None = None  # the ledger transaction an accepted charge posted

    @property
    def accepted(self) -> bool:
        return self.status_code == 201 or self.body.get("status") == "accepted"


def money_text(value: Decimal, is_currency: bool, decimals: int) -> str:
    """An amount as an answer shows it: a currency at the ledger's 12 places, another asset
    at its decimals (half-up, as PostgreSQL's ``round`` in the database functions)."""
    return fixed_text(value, 12 if is_currency else decimals)


class StoredAnswer(NamedTuple):
    """What is stored of an event seen before: its request's hash, answer and status."""

    request_hash: str
    response: Any
    status: str


def event_replay(data: EventData) -> Outcome | None:
    """The stored answer for an event id already seen, or None. A different body with the
    same id is an ``IdempotencyConflict``."""
    row = (
        UsageEvent.objects.filter(event_id=data.id)
        .values("request_hash", "response", "status")
        .first()
    )
    if row is None:
        return None
    return replayed(data, row["request_hash"], row["response"], row["status"])


def replayed(data: EventData, stored_hash: str, response: dict | None, status: str) -> Outcome:
    if stored_hash != data.hash():
        raise IdempotencyConflict(
            f"The event id '{data.id}' was already used with a different body.",
            errors={"id": ["Already used with a different body."]},
        )
    if isinstance(response, str):  # jsonb read with a raw cursor arrives as text
        response = json.loads(response)
    response = response or {}
    if status == UsageEvent.Status.DECLINED:
        answer = declined_answer(response)
        answer["event"] = in_order(answer["event"], EVENT_KEYS)
        return Outcome(status_code=402, body=in_order(answer, PROBLEM_KEYS), replayed=True)
    return Outcome(status_code=201, body=in_order(response, EVENT_KEYS), replayed=True)


# The keys of an answer in the order it was first given: jsonb keeps an object's keys in an
# order of its own, so a replay puts them back (an event's properties stay in jsonb's).
PROBLEM_KEYS: tuple[str, ...] = ("type", "title", "status", "detail", "code", "errors")

PROBLEM_KEYS += ("asset", "available", "limit", "spent", "held", "currency", "event")

EVENT_KEYS: tuple[str, ...] = (
    "id",
    "status",
    "customer",
    "meter",
    "quantity",
    "timestamp",
    "properties",
)

EVENT_KEYS += ("charge", "balances", "decline_code", "hold")

CHARGE_KEYS: tuple[str, ...] = (
    "included",
    "billable",
    "amount",
    "asset",
    "funding",
    "included_from",
)

CHARGE_KEYS += ("accrued", "rating")

FUNDING_KEYS = ("grant", "asset", "amount")


def in_order(body: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    ordered = {key: body[key] for key in keys if key in body}
    ordered.update((key, value) for key, value in body.items() if key not in ordered)
    charge = ordered.get("charge") if keys is EVENT_KEYS else None
    if isinstance(charge, dict):
        charge = ordered["charge"] = in_order(charge, CHARGE_KEYS)
        for name in ("funding", "included_from"):
            if isinstance(charge.get(name), list):
                charge[name] = [in_order(f, FUNDING_KEYS) for f in charge[name]]
    return ordered


# looked up with a stored answer's ``decline_code``, None when it has none
DECLINES: dict[str | None, type[Declined]] = {
    cls.code: cls for cls in (InsufficientFunds, NegativeBalance, SpendLimitExceeded)
}


def declined_answer(response: dict[str, Any]) -> dict[str, Any]:
    """The stored answer of a declined event: the 402 problem with the event under
    ``event``. A row recorded with the event's body alone gets the problem of its code (its
    detail then is the title)."""
    if "type" in response:
        return response
    declined = DECLINES.get(response.get("decline_code"), Declined)()
    return {**declined_problem(declined), "event": response}


def declined_event(response: dict[str, Any]) -> dict[str, Any]:
    """The event's body in the stored answer of a declined event."""
    return response.get("event", response) if "type" in response else response


def declined_problem(declined: Declined) -> dict[str, Any]:
    """The 402 problem body of a declined charge or hold (docs/api.md's problem details)."""
    return {
        "type": f"https://billfold.dev/problems/{declined.code}",
        "title": declined.title,
        "status": 402,
        "detail": declined.detail,
        "code": declined.code,
        "errors": {},
        **declined.extra,
    }


def event_body(
    ctx: Context,
    data: EventData,
    status: str,
    charge: Charge | None,
    fundings: list[Funding],
    accounts: dict[str, Account],
    decimals: dict[str, tuple[bool, int]],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": data.id,
        "status": status,
        "customer": ctx.external_id,
        "meter": ctx.meter_code,
        "quantity": plain(data.quantity),
        "timestamp": data.timestamp.isoformat(),
        "properties": data.properties,
    }
    if charge is not None:
        asset = charge.asset or (charge.price.asset if charge.price else ctx.currency)
        is_cur, dec = decimals.get(asset, (True, 12))
        body["charge"] = {
            "included": plain(charge.included),
            "billable": plain(charge.billable),
            "amount": money_text(charge.amount, is_cur, dec),
            "asset": asset,
            "funding": [_funding_json(f, decimals) for f in fundings[len(charge.unit_plan) :]],
            "included_from": [
                _funding_json(f, decimals) for f in fundings[: len(charge.unit_plan)]
            ],
            "accrued": plain(charge.accrued),
        }
    body["balances"] = [
        {
            "asset": code,
            "available": money_text(account.posted - account.held, *decimals.get(code, (True, 12))),
        }
        for code, account in sorted(accounts.items(), key=lambda item: item[1].pk)
    ]
    return body


def _funding_json(f: Funding, decimals: dict[str, tuple[bool, int]]) -> dict[str, Any]:
    return {
        "grant": f.grant_id,
        "asset": f.asset,
        "amount": money_text(f.amount, *decimals.get(f.asset, (True, 12))),
    }


def asset_decimals(codes: set[str]) -> dict[str, tuple[bool, int]]:
    from wallets.models import Asset

    return {
        a.code: (a.is_currency, a.decimals)
        for a in Asset.objects.filter(code__in=[c for c in codes if c])
    }


def periodic_body(ctx: Context, data: EventData) -> dict[str, Any]:
    body = event_body(ctx, data, "accepted", None, [], {}, {})
    body["charge"] = {
        "included": "0",
        "billable": plain(data.quantity),
        "amount": "0",
        "asset": None,
        "funding": [],
        "accrued": "0",
        "rating": "periodic",
    }
    return body


def event_get(*, event_id: str) -> UsageEvent:
    event = UsageEvent.objects.select_related("customer", "meter").filter(event_id=event_id).first()
    if event is None:
        raise NotFound(f"No event '{event_id}'.")
    return event


def known_decimals(ctx: Context, price: CachedPrice | None) -> dict[str, tuple[bool, int]]:
    """The decimals of an event's unit and price asset, as its lookup read them."""
    known = {ctx.unit: (ctx.unit_is_currency, ctx.unit_decimals)}
    if price is not None:
        known[price.asset] = (price.asset_is_currency, price.asset_decimals)
    return known


def decimals_of(
    codes: set[str], known: dict[str, tuple[bool, int]] | None
) -> dict[str, tuple[bool, int]]:
    known = known or {}
    missing = {c for c in codes if c and c not in known}
    return {**known, **(asset_decimals(missing) if missing else {})}


def hold_body(
    hold: Hold,
    reserved: dict[str, Decimal] | None = None,
    known: dict[str, tuple[bool, int]] | None = None,
) -> dict[str, Any]:
    if reserved is None:
        reserved = {}
        for allocation in hold.allocations.all():
            reserved[allocation.asset_id] = (
                reserved.get(allocation.asset_id, ZERO) + allocation.amount
            )
    meta = hold.metadata or {}
    decimals = decimals_of(set(reserved), known)
    return {
        "id": hold.pk,
        "status": hold.status,
        "customer": meta.get("customer"),
        "meter": meta.get("meter"),
        "quantity": meta.get("quantity"),
        "properties": meta.get("properties", {}),
        "held": [
            {
                "asset": asset,
                "amount": money_text(amount, *decimals.get(asset, (True, 12))),
            }
            for asset, amount in sorted(reserved.items())
        ],
        "expires_at": hold.expires_at.isoformat(),
        "created_at": hold.created_at.isoformat(),
        "event": meta.get("event"),
    }


def hold_metadata(ctx: Context, data: EventData) -> dict[str, Any]:
    """A usage hold's metadata, but for the estimate of its charge."""
    return {
        "customer": ctx.external_id,
        "meter": ctx.meter_code,
        "quantity": plain(data.quantity),
        "properties": data.properties,
        "timestamp": data.timestamp.isoformat(),
    }
