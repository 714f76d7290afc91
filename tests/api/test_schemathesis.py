"""The API answers as its OpenAPI document says: Schemathesis generates requests for every
operation of ``GET /api/v1/schema`` (valid and invalid ones) and checks each answer — no
server error, a documented status code and content type, a body and headers that match the
documented schema.

It runs in process against the WSGI application, with a key that has every scope, on a
database holding one of each object (customer, meter, plan, subscription, grant, event,
hold, invoice), so that generated ids sometimes name a real object. It is bounded (a few
examples per operation, a fixed seed) and marked ``services``: the service-backed step of
``.ci/run`` runs it; ``pytest -m services tests/api/test_schemathesis.py`` runs it by hand
(docs/api-testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application

pytestmark = pytest.mark.services

SCHEMA_PATH = "/api/v1/schema?format=json"
EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

WORLD_CUSTOMER = "acme"
WORLD_METER = "tokens"
WORLD_PLAN = "pro"


@contextmanager
def transaction_kept_open() -> Iterator[None]:
    """Requests go through Django's WSGI handler, which closes a connection that is inside a
    transaction at every request's start and end; the test's own transaction must stay open.
    (Django's test client disconnects the same receivers around each of its requests, and
    connects them again after.)"""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, api) -> Iterator[dict[str, Any]]:
    """One of each object, made through the API."""

    def made(response, status=201) -> dict:
        assert response.status_code == status, response.content[:500]
        return response.json()

    made(
        api.post(
            "/api/v1/meters",
            {"code": WORLD_METER, "unit": "tokens", "aggregation": "sum"},
            format="json",
        )
    )
    made(
        api.post(
            "/api/v1/plans",
            {
                "code": WORLD_PLAN,
                "name": "Pro",
                "currency": "USD",
                "interval": "month",
                "base_fee": "10.00",
                "prices": [
                    {"meter": WORLD_METER, "model": "per_unit", "unit_price": "0.01"},
                ],
            },
            format="json",
        )
    )
    made(
        api.post(
            "/api/v1/customers",
            {"external_id": WORLD_CUSTOMER, "name": "Acme", "currency": "USD"},
            format="json",
        )
    )
    subscription = made(
        api.post(
            "/api/v1/subscriptions",
            {"customer": WORLD_CUSTOMER, "plan": WORLD_PLAN, "overage": "invoice"},
            format="json",
        )
    )
    made(
        api.post(
            f"/api/v1/customers/{WORLD_CUSTOMER}/grants",
            {"id": "grant-1", "asset": "USD", "amount": "100"},
            format="json",
        )
    )
    made(
        api.post(
            "/api/v1/events",
            {"id": "evt-1", "customer": WORLD_CUSTOMER, "meter": WORLD_METER, "quantity": "5"},
            format="json",
        )
    )
    made(
        api.post(
            "/api/v1/holds",
            {"id": "hold-1", "customer": WORLD_CUSTOMER, "meter": WORLD_METER, "quantity": "3"},
            format="json",
        )
    )
    made(
        api.put(
            f"/api/v1/customers/{WORLD_CUSTOMER}/spend-limit",
            {"amount": "1000"},
            format="json",
        ),
        200,
    )
    with transaction_kept_open():
        yield {"subscription": subscription, "raw_key": api.raw_key}


# loaded when the module is collected (the document is made without the database, in < 1 s)
schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, application)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_as_its_schema_says(case, world):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {world['raw_key']}"},
        checks=CHECKS,
    )
