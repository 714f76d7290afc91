"""Numbers are read strictly: a decimal string is ASCII digits with an optional sign and one
``.``; a JSON integer is accepted; a JSON number with a fraction or an exponent is refused
for amounts, quantities and prices ("send decimals as strings") while free-form properties
keep it; money in a currency has at most the currency's places."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from billing.api.fastpath import UsageFastPath
from billing.models import SpendLimit, UsageEvent
from core.errors import ValidationFailed
from core.numbers import JsonFraction
from plans.models import Plan
from tests.api.helpers import problem_of
from tests.api.test_fast_path import Django, call
from wallets.models import Grant
from wallets.services.amounts import to_decimal

pytestmark = pytest.mark.django_db

TS = "2026-01-05T10:00:00Z"
NOT_DECIMAL_TEXT = [
    "١٠",
    "１０",
    "۱۰",
    "1e3",
    "2.5E-7",
    "NaN",
    "Infinity",
    "1_000",
    "1.2.3",
    "",
    ".",
]


@pytest.mark.parametrize("text", NOT_DECIMAL_TEXT)
def test_only_ascii_decimal_text_is_a_number(text):
    with pytest.raises(ValidationFailed):
        to_decimal(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10", D(10)), ("-3", D(-3)), ("+7", D(7)), (".5", D("0.5")), ("5.", D(5)), (10, D(10))],
)
def test_decimal_text_and_integers_are_numbers(value, expected):
    assert to_decimal(value) == expected


def test_a_json_fraction_is_no_amount():
    with pytest.raises(ValidationFailed) as caught:
        to_decimal(JsonFraction("1.5"), field="quantity")
    assert caught.value.errors == {"quantity": ['Send decimals as strings, e.g. "10.00".']}


def post_raw(api, path: str, text: str, method: str = "POST"):
    return api.generic(method, path, text, content_type="application/json")


def event_text(quantity: str, event_id: str = "e1", **extra) -> str:
    body = json.dumps({"id": event_id, "customer": "acme", "meter": "llm_tokens", **extra})
    return body[:-1] + f', "quantity": {quantity}}}'


@pytest.mark.parametrize("quantity", ['"١٠"', '"１０"', '"1e3"', "1.5", "1e3", "10.0"])
def test_an_event_quantity_must_be_decimal_text_or_an_integer(api, tokens, quantity):
    r = post_raw(api, "/api/v1/events", event_text(quantity, timestamp=TS))
    assert "quantity" in problem_of(r, 400, "invalid")["errors"]
    r = post_raw(api, "/api/v1/events/batch", '{"events": [' + event_text(quantity) + "]}")
    assert r.json()["results"][0]["status"] == "invalid"
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize("quantity", ['"١٠"', "1.5"])
def test_the_fast_path_follows_the_same_rule(api, tokens, quantity):
    django = Django()
    raw = event_text(quantity).encode()
    status, _, content = call(UsageFastPath(django), "/api/v1/events", raw, tokens)
    assert (status, django.calls) == (400, 1)
    assert "quantity" in json.loads(content)["errors"]


def test_an_integer_quantity_is_accepted_and_properties_keep_fractions(api, tokens):
    r = post_raw(api, "/api/v1/events", event_text("10", properties={"f": 1.5, "n": 3, "e": 1e3}))
    assert r.status_code == 201, r.content
    assert UsageEvent.objects.get().properties == {"f": 1.5, "n": 3, "e": 1000.0}
    assert UsageEvent.objects.get().quantity == 10


def test_a_capture_quantity_with_a_fraction_is_refused(api, tokens):
    hold = {"id": "h1", "customer": "acme", "meter": "llm_tokens", "quantity": "10"}
    assert api.post("/api/v1/holds", hold, format="json").status_code == 201
    r = post_raw(api, "/api/v1/holds/h1/capture", '{"quantity": 1.5}')
    assert "quantity" in problem_of(r, 400, "invalid")["errors"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"asset": "USD", "amount": 1.5}', "amount"),
        ('{"asset": "USD", "amount": "١"}', "amount"),
        ('{"asset": "USD", "amount": "5", "cost": {"amount": "1.005", "currency": "USD"}}', "cost"),
        ('{"asset": "USD", "amount": "5", "cost": {"amount": 5.5, "currency": "USD"}}', "cost"),
    ],
)
def test_grant_amounts_and_costs_are_strict(api, tokens, text, field):
    body = problem_of(post_raw(api, "/api/v1/customers/acme/grants", text), 400, "invalid")
    assert any(name.startswith(field) for name in body["errors"]), body
    assert Grant.objects.count() == 1  # g1 only


def test_a_grant_cost_at_the_currencys_places_is_kept(api, tokens):
    text = (
        '{"id": "g2", "asset": "USD", "amount": "5", "cost": {"amount": "4.99", "currency": "USD"}}'
    )
    r = post_raw(api, "/api/v1/customers/acme/grants", text)
    assert r.status_code == 201, r.content
    assert r.json()["cost"] == {"amount": "4.99", "currency": "USD"}


@pytest.mark.parametrize("amount", ["100.1", '"１００"', '"100.001"'])
def test_a_spend_limit_is_strict(api, tokens, amount):
    r = post_raw(api, "/api/v1/customers/acme/spend-limit", f'{{"amount": {amount}}}', "PUT")
    assert "amount" in problem_of(r, 400, "invalid")["errors"]
    assert not SpendLimit.objects.exists()


@pytest.mark.parametrize("price", ["0.5", '"٠.5"', '"5e-1"'])
def test_a_price_is_strict(api, tokens, price):
    text = (
        '{"code": "p2", "name": "P2", "currency": "USD", "interval": "month", "prices": '
        f'[{{"meter": "llm_tokens", "model": "per_unit", "unit_price": {price}}}]}}'
    )
    problem_of(post_raw(api, "/api/v1/plans", text), 400, "invalid")
    assert not Plan.objects.filter(code="p2").exists()


@pytest.mark.parametrize("priority", ['"١٠"', '"１０"', '"1e1"', '"10.0"'])
def test_an_integer_given_as_text_is_ascii_digits(api, tokens, priority):
    """Integers (a grant's priority, seats, a hold's expiry, thresholds) follow the decimal
    text rule: other scripts' digits are refused, not read through Python's ``int``."""
    text = f'{{"id": "g2", "asset": "USD", "amount": "5", "priority": {priority}}}'
    body = problem_of(post_raw(api, "/api/v1/customers/acme/grants", text), 400, "invalid")
    assert "priority" in body["errors"], body
    hold = f'{{"id": "h1", "customer": "acme", "meter": "llm_tokens", "expires_in": {priority}}}'
    assert (
        "expires_in" in problem_of(post_raw(api, "/api/v1/holds", hold), 400, "invalid")["errors"]
    )
    assert Grant.objects.count() == 1  # g1 only


def test_an_integer_as_ascii_text_or_a_json_integer_is_read(api, tokens):
    for grant_id, priority in (("g2", '"7"'), ("g3", "7")):
        text = f'{{"id": "{grant_id}", "asset": "USD", "amount": "5", "priority": {priority}}}'
        r = post_raw(api, "/api/v1/customers/acme/grants", text)
        assert r.status_code == 201, r.content
        assert r.json()["priority"] == 7
