"""`/api/v1/subscriptions/{id}`: read, seats (PATCH), change-plan, cancel and charges."""

from __future__ import annotations

import pytest
import time_machine

from billing.models import ChargeItem, Subscription
from tests.factories import CustomerFactory, MeterFactory, PublishedPlanFactory, tokens_price
from wallets.models import Grant

pytestmark = pytest.mark.django_db

JAN_1 = "2026-01-01T00:00:00+00:00"
FEB_1 = "2026-02-01T00:00:00+00:00"


@pytest.fixture
def sub_id(api) -> int:
    """acme on team (USD 20.00 per seat per month) with 5 seats from 2026-01-01."""
    MeterFactory(llm_tokens=True)
    PublishedPlanFactory(code="team", name="Team", seats=True)
    PublishedPlanFactory(
        code="scale",
        name="Scale",
        base_fee="99.00",
        seat_price="10.00",
        prices=[tokens_price("3000000")],
    )
    CustomerFactory(external_id="acme", name="Acme")
    with time_machine.travel(JAN_1, tick=False):
        r = api.post(
            "/api/v1/subscriptions",
            {"customer": "acme", "plan": "team", "start": JAN_1, "seats": 5},
            format="json",
        )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def state(sub_id: int) -> tuple:
    sub = Subscription.objects.get(pk=sub_id)
    return (
        sub.plan_version.plan.code,
        sub.status,
        sub.seats,
        sub.next_seats,
        sub.next_plan_version_id,
        sub.canceled_at,
        ChargeItem.objects.count(),
    )


UNTOUCHED = ("team", "active", 5, None, None, None, 0)


def test_get_subscription(api, sub_id):
    r = api.get(f"/api/v1/subscriptions/{sub_id}")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "id": sub_id,
        "customer": "acme",
        "plan": "team",
        "plan_version": 1,
        "status": "active",
        "seats": 5,
        "overage": "wallet",
        "started_at": JAN_1,
        "current_period": {"start": JAN_1, "end": FEB_1},
        "trial_ends_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "next_plan": None,
        "next_seats": None,
    }
    listed = api.get("/api/v1/subscriptions?customer=acme").json()["results"]
    assert listed == [r.json()]


@pytest.mark.parametrize("bad", ["999999", "x", "0", "-1", "1.0", "99999999999999999999", "%20"])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"seats": 3}),
        ("post", "/change-plan", {"plan": "scale", "when": "now"}),
        ("post", "/cancel", {"when": "now"}),
        ("get", "/charges", None),
    ],
)
def test_unknown_subscription_is_404(api, sub_id, bad, method, suffix, body):
    r = getattr(api, method)(f"/api/v1/subscriptions/{bad}{suffix}", body, format="json")
    assert r.status_code == 404, r.content
    assert (r["Content-Type"], r.json()["code"]) == ("application/problem+json", "not_found")
    assert state(sub_id) == UNTOUCHED


def test_example_b_over_the_api(api, sub_id):
    with time_machine.travel("2026-01-16T00:00:00Z", tick=False):
        r = api.patch(f"/api/v1/subscriptions/{sub_id}", {"seats": 7}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["seats"], r.json()["next_seats"]) == (7, None)
    charges = api.get(f"/api/v1/subscriptions/{sub_id}/charges")
    assert charges.status_code == 200, charges.content
    body = charges.json()
    item = ChargeItem.objects.get()
    assert body == {
        "results": [
            {
                "id": item.pk,
                "kind": "proration",
                "description": "2 seats added 2026-01-16, prorated 16/31 days",
                "currency": "USD",
                "quantity": "2.000000000000",
                "unit_price": "20.000000000000",
                "amount": "20.645161290323",
                "period": {"start": "2026-01-16T00:00:00+00:00", "end": FEB_1},
                "invoice": None,
                "created_at": "2026-01-16T00:00:00+00:00",
            }
        ],
        "next": None,
    }


def test_seat_decrease_over_the_api_is_scheduled(api, sub_id):
    with time_machine.travel("2026-01-16T00:00:00Z", tick=False):
        r = api.patch(f"/api/v1/subscriptions/{sub_id}", {"seats": 3}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["seats"], r.json()["next_seats"]) == (5, 3)
    assert api.get(f"/api/v1/subscriptions/{sub_id}/charges").json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seats": -1}, "seats"),
        ({"seats": "x"}, "seats"),
        ({"seats": 10**7}, "seats"),
        ({"seats": 2.5}, "seats"),
        ({"seats": None}, "seats"),
        ({"seats": True}, "seats"),
        ({}, "seats"),
        ({"seats": 7, "status": "ended"}, "status"),
        ([{"seats": 7}], "non_field_errors"),
    ],
)
def test_bad_seats_write_nothing(api, sub_id, body, field):
    with time_machine.travel("2026-01-16T00:00:00Z", tick=False):
        r = api.patch(f"/api/v1/subscriptions/{sub_id}", body, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "invalid"
    assert field in r.json()["errors"], r.json()
    assert state(sub_id) == UNTOUCHED


def test_change_plan_now_over_the_api_is_idempotent(api, sub_id):
    headers = {"Idempotency-Key": "change-1"}
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        r = api.post(
            f"/api/v1/subscriptions/{sub_id}/change-plan",
            {"plan": "scale", "when": "now"},
            format="json",
            headers=headers,
        )
        assert r.status_code == 200, r.content
        again = api.post(
            f"/api/v1/subscriptions/{sub_id}/change-plan",
            {"plan": "scale", "when": "now"},
            format="json",
            headers=headers,
        )
        conflict = api.post(
            f"/api/v1/subscriptions/{sub_id}/change-plan",
            {"plan": "team", "when": "now"},
            format="json",
            headers=headers,
        )
    assert (r.json()["plan"], r.json()["plan_version"], r.json()["next_plan"]) == (
        "scale",
        1,
        None,
    )
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (
        200,
        r.json(),
        "true",
    )
    assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")
    results = api.get(f"/api/v1/subscriptions/{sub_id}/charges").json()["results"]
    # newest first: 5 seats of scale (5 × 10 × 21/31), scale's base fee (99 × 21/31),
    # the credit for 5 unused team seats (−5 × 20 × 21/31)
    assert [(c["description"], c["amount"]) for c in results] == [
        (
            "5 seats on scale v1 from plan change on 2026-01-11, prorated 21/31 days",
            "33.870967741935",
        ),
        (
            "scale v1 base fee from plan change on 2026-01-11, prorated 21/31 days",
            "67.064516129032",
        ),
        (
            "Unused 5 seats on team v1 after plan change on 2026-01-11, prorated 21/31 days",
            "-67.741935483871",
        ),
    ]
    assert list(Grant.objects.values_list("amount", flat=True)) == [2_032_258]


def test_change_plan_at_period_end_over_the_api(api, sub_id):
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        r = api.post(
            f"/api/v1/subscriptions/{sub_id}/change-plan", {"plan": "scale"}, format="json"
        )
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["plan"], body["next_plan"]) == ("team", {"plan": "scale", "version": 1})
    assert api.get(f"/api/v1/subscriptions/{sub_id}").json()["next_plan"] == {
        "plan": "scale",
        "version": 1,
    }
    assert ChargeItem.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"plan": "scale", "when": "tomorrow"}, 400, "when"),
        ({"plan": "nope", "when": "now"}, 404, "plan"),
        ({"plan": "team", "when": "now"}, 400, "plan"),
        ({"when": "now"}, 400, "plan"),
        ({"plan": "x" * 65}, 400, "plan"),
        ({"plan": 5, "when": "now"}, 404, "plan"),
        ({"plan": "scale", "when": "now", "seats": 3}, 400, "seats"),
    ],
)
def test_bad_plan_changes_write_nothing(api, sub_id, body, status, field):
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        r = api.post(f"/api/v1/subscriptions/{sub_id}/change-plan", body, format="json")
    assert r.status_code == status, r.content
    assert field in r.json()["errors"], r.json()
    assert state(sub_id) == UNTOUCHED
    assert Grant.objects.count() == 0


def test_cancel_over_the_api(api, sub_id):
    with time_machine.travel("2026-01-21T00:00:00Z", tick=False):
        r = api.post(f"/api/v1/subscriptions/{sub_id}/cancel", {}, format="json")
        assert r.status_code == 200, r.content
        assert (
            r.json()["status"],
            r.json()["cancel_at_period_end"],
            r.json()["canceled_at"],
            r.json()["ended_at"],
        ) == ("canceled", True, "2026-01-21T00:00:00+00:00", None)
        now = api.post(f"/api/v1/subscriptions/{sub_id}/cancel", {"when": "now"}, format="json")
        assert now.status_code == 200, now.content
        assert (now.json()["status"], now.json()["ended_at"]) == (
            "ended",
            "2026-01-21T00:00:00+00:00",
        )
        again = api.post(f"/api/v1/subscriptions/{sub_id}/cancel", format="json")
        assert (again.status_code, again.json()["code"]) == (409, "subscription_ended")
        seats = api.patch(f"/api/v1/subscriptions/{sub_id}", {"seats": 9}, format="json")
        assert (seats.status_code, seats.json()["code"]) == (409, "subscription_ended")
    results = api.get(f"/api/v1/subscriptions/{sub_id}/charges").json()["results"]
    # 5 unused seats for 11 of 31 days: −5 × 20 × 11/31
    assert [(c["description"], c["amount"]) for c in results] == [
        (
            "Unused 5 seats on team v1 after cancellation on 2026-01-21, prorated 11/31 days",
            "-35.483870967742",
        )
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"when": "tomorrow"}, "when"), ({"when": None}, "when"), ({"at": "now"}, "at")],
)
def test_bad_cancel_writes_nothing(api, sub_id, body, field):
    r = api.post(f"/api/v1/subscriptions/{sub_id}/cancel", body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()["errors"], r.json()
    assert state(sub_id) == UNTOUCHED


def test_read_key_cannot_change_subscriptions(make_api_client, sub_id):
    reader = make_api_client(scopes=["read"])
    assert reader.get(f"/api/v1/subscriptions/{sub_id}").status_code == 200
    assert reader.get(f"/api/v1/subscriptions/{sub_id}/charges").status_code == 200
    for response in (
        reader.patch(f"/api/v1/subscriptions/{sub_id}", {"seats": 9}, format="json"),
        reader.post(f"/api/v1/subscriptions/{sub_id}/cancel", {}, format="json"),
        reader.post(
            f"/api/v1/subscriptions/{sub_id}/change-plan", {"plan": "scale"}, format="json"
        ),
    ):
        assert response.status_code == 403
    assert state(sub_id) == UNTOUCHED
