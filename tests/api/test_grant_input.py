"""A grant's input is checked as every other: its scope names known meters only, and its
``expires_at`` is a time with an offset (one rule for every input time of the API)."""

from __future__ import annotations

import pytest
import time_machine

from billing.api import event_input, fields
from billing.models import Customer
from billing.services.grants import customer_grant_create
from core.errors import ValidationFailed
from tests.api.helpers import problem_of
from tests.billing.scenario import setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import Grant

pytestmark = pytest.mark.django_db

GRANTS = "/api/v1/customers/acme/grants"


@pytest.fixture
def acme(api):
    ensure_currencies()
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        setup_meter(api, "llm_tokens", "tokens")
        setup_plan(api, "pro", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.01"}])
        setup_customer(api, plan="pro")


def test_a_grant_scoped_to_an_unknown_meter_is_refused(api, acme):
    body = {"id": "g1", "asset": "USD", "amount": "5", "meters": ["llm_tokens", "nope", "zz"]}
    problem = problem_of(api.post(GRANTS, body, format="json"), 400, "invalid")
    assert problem["errors"] == {"meters": ["Unknown meter 'nope'.", "Unknown meter 'zz'."]}
    assert not Grant.objects.filter(pk="g1").exists()


def test_a_grant_scoped_to_known_meters_is_made(api, acme):
    body = {"id": "g1", "asset": "USD", "amount": "5", "meters": ["llm_tokens"]}
    r = api.post(GRANTS, body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["meters"] == ["llm_tokens"]


def test_the_service_the_api_and_admin_share_checks_the_meters(acme):
    with pytest.raises(ValidationFailed) as caught:
        customer_grant_create(
            customer=Customer.objects.get(external_id="acme"),
            asset="USD",
            amount="5",
            purpose="promotional",
            meters=["nope"],
        )
    assert caught.value.errors == {"meters": ["Unknown meter 'nope'."]}
    assert not Grant.objects.filter(purpose="promotional").exists()


def test_a_grant_expiry_without_an_offset_is_refused(api, acme):
    body = {"id": "g1", "asset": "USD", "amount": "5", "expires_at": "2027-01-01T00:00:00"}
    problem = problem_of(api.post(GRANTS, body, format="json"), 400, "invalid")
    assert list(problem["errors"]) == ["expires_at"]
    assert not Grant.objects.exists()
    body["expires_at"] = "2027-01-01T00:00:00+02:00"
    r = api.post(GRANTS, body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["expires_at"] == "2026-12-31T22:00:00+00:00"


def test_the_aware_time_field_is_one_class_importable_from_event_input():
    assert event_input.AwareDateTimeField is fields.AwareDateTimeField
