"""Helpers to drive docs/charging.md's examples over the public API."""

from __future__ import annotations

from decimal import Decimal

D = Decimal


def setup_meter(api, code, unit, aggregation="sum", prop=None):
    body = {"code": code, "name": code, "unit": unit, "aggregation": aggregation}
    if prop:
        body["property"] = prop
    r = api.post("/api/v1/meters", body, format="json")
    assert r.status_code == 201, r.content


def setup_plan(api, code, prices, **fields):
    body = {"code": code, "name": code, "currency": "USD", "interval": "month", "prices": prices}
    body.update(fields)
    r = api.post("/api/v1/plans", body, format="json")
    assert r.status_code == 201, r.content


def setup_example_c_plan(api, unit_price="0.99", **fields):
    """docs/charging.md example C: meter ``ticket_resolved`` (outcomes, counted) on plan
    ``support`` at ``unit_price`` per ticket; ``fields`` add to the plan (a base fee)."""
    setup_meter(api, "ticket_resolved", "outcomes", "count")
    setup_plan(
        api,
        "support",
        [{"meter": "ticket_resolved", "model": "per_unit", "unit_price": unit_price}],
        **fields,
    )


def setup_customer(
    api,
    external_id="acme",
    plan="pro",
    overage="wallet",
    start="2026-01-01T00:00:00Z",
    subscription=None,
    **extra,
):
    """A customer (``extra``: more of its fields) subscribed to ``plan`` from ``start``
    (``subscription``: more fields of the subscription, e.g. ``backdate``)."""
    r = api.post(
        "/api/v1/customers",
        {"external_id": external_id, "name": external_id, "currency": "USD", **extra},
        format="json",
    )
    assert r.status_code == 201, r.content
    r = api.post(
        "/api/v1/subscriptions",
        {
            "customer": external_id,
            "plan": plan,
            "start": start,
            "overage": overage,
            **(subscription or {}),
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    return r.json()


def grant(api, customer, asset, amount, **extra):
    r = api.post(
        f"/api/v1/customers/{customer}/grants",
        {"asset": asset, "amount": amount, **extra},
        format="json",
    )
    assert r.status_code == 201, r.content
    return r.json()


def event(api, event_id, customer, meter, quantity=None, ts="2026-01-05T10:00:00Z", **props):
    body = {"id": event_id, "customer": customer, "meter": meter, "timestamp": ts}
    if quantity is not None:
        body["quantity"] = quantity
    if props:
        body["properties"] = props
    return api.post("/api/v1/events", body, format="json")


def available(api, customer, asset):
    wallet = api.get(f"/api/v1/customers/{customer}/wallet").json()
    for balance in wallet["balances"]:
        if balance["asset"] == asset:
            return D(balance["available"])
    return D(0)
