"""Plans in the admin: added and re-versioned from a JSON spec through the plan services, shown
with readable prices per version and the subscriptions on each version."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Subscription
from plans.models import Plan, PlanVersion, Price
from plans.services import plan_version_as_spec, plan_version_publish
from tests.factories import MeterFactory, PublishedPlanFactory, SubscriptionFactory

from .conftest import form_data, table_rows
from .test_pages import admin_url

SPEC = {
    "currency": "USD",
    "interval": "month",
    "base_fee": "49",
    "prices": [
        {
            "meter": "llm_tokens",
            "included": "1000000",
            "model": "graduated",
            "tiers": [
                {"up_to": "10000000", "unit_price": "0.000002"},
                {"up_to": None, "unit_price": "0.0000015"},
            ],
        },
        {"meter": "images", "model": "per_unit", "unit_price": "0.04"},
    ],
}
SENTENCE = (
    "1,000,000 tokens included, then USD 0.000002 per token up to 10,000,000, then USD 0.0000015"
)


@pytest.fixture
def plan(db) -> Plan:
    MeterFactory(llm_tokens=True, name="LLM tokens")
    MeterFactory(images=True, name="Images")
    return PublishedPlanFactory(code="pro", name="Pro", **SPEC).plan


@pytest.fixture
def subscribed(plan) -> Subscription:
    return SubscriptionFactory(
        customer__external_id="acme",
        customer__name="Acme",
        plan="pro",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        backdate=True,
    )


def publish_url(plan: Plan) -> str:
    return reverse("admin:plans_plan_publish", args=[plan.pk])


def version_rows(plan: Plan) -> list[tuple]:
    return list(
        PlanVersion.objects.filter(plan=plan)
        .order_by("version")
        .values_list("version", "name", "base_fee")
    )


# --- publishing a version -----------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_publishes_a_new_version_from_the_latest_spec(finance_client, plan, subscribed):
    v1 = PlanVersion.objects.get(plan=plan, version=1)
    v1_spec = plan_version_as_spec(v1)
    page = finance_client.get(publish_url(plan))
    assert page.status_code == 200
    data = form_data(page.content.decode())
    assert json.loads(data["spec"][0]) == v1_spec  # pre-filled with the latest version
    assert SENTENCE in page.content.decode()  # the current prices, for reference

    spec = json.loads(data["spec"][0])
    spec["base_fee"] = 59.5  # a JSON number: read as an exact Decimal
    spec["prices"][1]["unit_price"] = "0.03"
    response = finance_client.post(
        publish_url(plan), {"name": "Pro 2026", "spec": json.dumps(spec, indent=2)}
    )
    assert response.status_code == 302
    assert response["Location"] == admin_url(plan, "change", plan.pk)

    assert version_rows(plan) == [(1, "Pro", Decimal("49")), (2, "Pro 2026", Decimal("59.5"))]
    v2 = PlanVersion.objects.get(plan=plan, version=2)
    assert [p["unit_price"] for p in plan_version_as_spec(v2)["prices"][1:]] == ["0.03"]
    assert plan_version_as_spec(v2)["prices"][0] == v1_spec["prices"][0]
    assert plan_version_as_spec(v1) == v1_spec  # version 1 untouched
    subscribed.refresh_from_db()
    assert subscribed.plan_version_id == v1.pk  # subscriptions stay on their version
    entry = LogEntry.objects.get(object_id=str(plan.pk))
    assert (entry.user.username, entry.action_flag, entry.change_message) == (
        "fiona",
        CHANGE,
        "Published version 2 (Pro 2026).",
    )


@pytest.mark.django_db
def test_an_empty_version_name_takes_the_plans_name(finance_client, plan):
    spec = json.dumps(plan_version_as_spec(PlanVersion.objects.get(plan=plan)))
    assert finance_client.post(publish_url(plan), {"name": "", "spec": spec}).status_code == 302
    assert version_rows(plan)[-1] == (2, "Pro", Decimal("49"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "errors"),
    [
        (
            '{"currency": "USD" "interval": 1}',
            ["Not valid JSON: Expecting ',' delimiter (line 1, column 20)."],
        ),
        ("[1, 2]", ["The spec must be a JSON object."]),
        (
            '{"base_fee": NaN}',
            ['Not valid JSON: NaN is not a number; write decimals as strings, e.g. "0.50".'],
        ),
        ("", ["This field is required."]),
    ],
)
def test_publishing_bad_json_shows_the_error_and_writes_nothing(finance_client, plan, text, errors):
    response = finance_client.post(publish_url(plan), {"name": "v2", "spec": text})
    assert response.status_code == 200
    assert response.context["form"].errors == {"spec": errors}
    assert "Nothing was published" in response.content.decode()
    assert version_rows(plan) == [(1, "Pro", Decimal("49"))]


@pytest.mark.django_db
def test_publishing_an_invalid_spec_lists_the_service_errors_by_path(finance_client, plan):
    spec = json.loads(json.dumps(SPEC))
    spec["trial_days"] = -1
    spec["prices"][0]["tiers"].insert(1, {"up_to": "5", "unit_price": "0.000001"})
    spec["prices"][1]["meter"] = "nope"
    response = finance_client.post(publish_url(plan), {"name": "v2", "spec": json.dumps(spec)})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "__all__": [
            "trial_days: An integer from 0 to 3650.",
            "prices[0].tiers[1].up_to: Must be greater than the previous tier's up_to "
            "(10,000,000); up_to must strictly increase.",
            "prices[1].meter: Unknown meter.",
        ]
    }
    page = response.content.decode()
    assert "prices[1].meter: Unknown meter." in page
    assert version_rows(plan) == [(1, "Pro", Decimal("49"))]
    assert Price.objects.count() == 2
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
def test_auditors_cannot_publish_or_add(auditor_client, plan):
    spec = json.dumps(SPEC)
    assert auditor_client.get(publish_url(plan)).status_code == 403
    assert auditor_client.post(publish_url(plan), {"name": "x", "spec": spec}).status_code == 403
    assert auditor_client.get(admin_url(Plan, "add")).status_code == 403
    body = {"code": "team", "name": "Team", "spec": spec}
    assert auditor_client.post(admin_url(Plan, "add"), body).status_code == 403
    assert version_rows(plan) == [(1, "Pro", Decimal("49"))]
    assert Plan.objects.count() == 1
    page = auditor_client.get(admin_url(plan, "change", plan.pk)).content.decode()
    assert publish_url(plan) not in page


@pytest.mark.django_db
def test_publishing_an_unknown_plan_is_404(finance_client, plan):
    assert finance_client.get(reverse("admin:plans_plan_publish", args=[999999])).status_code == 404


# --- adding a plan ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_finance_adds_a_plan_with_its_first_version(finance_client, plan):
    changelist = finance_client.get(admin_url(Plan, "changelist")).content.decode()
    assert admin_url(Plan, "add") in changelist
    page = finance_client.get(admin_url(Plan, "add"))
    assert page.status_code == 200
    data = form_data(page.content.decode())
    assert json.loads(data["spec"][0])["prices"] == []
    spec = {
        "currency": "EUR",
        "interval": "year",
        "base_fee": "490.00",
        "seat_price": "10",
        "trial_days": 14,
        "prices": [
            {"meter": "images", "model": "package", "package_size": "100", "package_price": "2"}
        ],
    }
    response = finance_client.post(
        admin_url(Plan, "add"),
        {"code": "team", "name": "Team", "description": "For teams", "spec": json.dumps(spec)},
    )
    assert response.status_code == 302
    team = Plan.objects.get(code="team")
    assert response["Location"] == admin_url(team, "change", team.pk)
    assert (team.name, team.description) == ("Team", "For teams")
    v1 = PlanVersion.objects.get(plan=team)
    assert (v1.version, v1.currency_id, v1.interval, v1.base_fee, v1.seat_price, v1.trial_days) == (
        1,
        "EUR",
        "year",
        Decimal("490"),
        Decimal("10"),
        14,
    )
    assert plan_version_as_spec(v1)["prices"] == [
        {
            "meter": "images",
            "filter": {},
            "included": "0",
            "model": "package",
            "asset": "EUR",
            "package_size": "100",
            "package_price": "2",
        }
    ]
    entry = LogEntry.objects.get(object_id=str(team.pk))
    assert (entry.action_flag, entry.change_message) == (ADDITION, "Added with version 1.")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"code": "pro"}, {"code": ["A plan with this code exists."]}),
        (
            {"code": "bad code!"},
            {"code": ["1–64 letters, digits, _ . : or -, starting with a letter or digit."]},
        ),
        ({"name": ""}, {"name": ["This field is required."]}),
        (
            {"spec": '{"currency": "USD", "interval": "fortnight"}'},
            {"__all__": ["interval: One of day, week, month, year."]},
        ),
        (
            {"spec": "{"},
            {
                "spec": [
                    "Not valid JSON: Expecting property name enclosed in double quotes "
                    "(line 1, column 2)."
                ]
            },
        ),
    ],
)
def test_adding_a_plan_refuses_bad_input_and_writes_nothing(finance_client, plan, fields, errors):
    body = {"code": "team", "name": "Team", "description": "", "spec": json.dumps(SPEC), **fields}
    response = finance_client.post(admin_url(Plan, "add"), body)
    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert list(Plan.objects.values_list("code", flat=True)) == ["pro"]
    assert PlanVersion.objects.count() == 1


# --- the plan page and the subscriptions list ---------------------------------------------------


@pytest.mark.django_db
def test_plan_page_shows_prices_per_version_and_links_their_subscriptions(
    superuser_client, plan, subscribed
):
    spec = json.loads(json.dumps(SPEC))
    spec["prices"] = spec["prices"][1:]
    v2 = plan_version_publish(plan=plan, spec=spec, name="Pro 2026")
    v1 = PlanVersion.objects.get(plan=plan, version=1)
    page = superuser_client.get(admin_url(plan, "change", plan.pk)).content.decode()
    prices = [t for t in table_rows(page) if t and t[0][:2] == ["Meter", "Filter"]]
    assert prices == [
        [  # newest first
            ["Meter", "Filter", "Included per period", "Model", "Price"],
            ["images", "—", "0 images", "Per unit", "USD 0.04 per image"],
        ],
        [
            ["Meter", "Filter", "Included per period", "Model", "Price"],
            ["llm_tokens", "—", "1,000,000 tokens", "Graduated", SENTENCE],
            ["images", "—", "0 images", "Per unit", "USD 0.04 per image"],
        ],
    ]
    subscriptions = admin_url(Subscription, "changelist")
    assert f'<a href="{subscriptions}?plan_version={v1.pk}">1 subscription</a>' in page
    assert f'<a href="{subscriptions}?plan_version={v2.pk}">0 subscriptions</a>' in page
    assert publish_url(plan) in page

    listed = superuser_client.get(subscriptions, {"plan_version": v1.pk})
    assert [s.pk for s in listed.context["cl"].result_list] == [subscribed.pk]
    listed = superuser_client.get(subscriptions, {"plan_version": v2.pk})
    assert list(listed.context["cl"].result_list) == []


@pytest.mark.django_db
def test_subscription_list_shows_plan_and_version(superuser_client, subscribed):
    page = superuser_client.get(admin_url(Subscription, "changelist")).content.decode()
    rows = [t for t in table_rows(page) if t and "Plan" in t[0] and "Version" in t[0]]
    assert len(rows) == 1
    header, row = rows[0][0], rows[0][1]
    assert (row[header.index("Plan")], row[header.index("Version")]) == ("pro", "v1")


@pytest.mark.django_db
def test_plan_page_query_count_does_not_grow_with_versions(superuser_client, plan):
    url = admin_url(plan, "change", plan.pk)

    def queries() -> int:
        superuser_client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert superuser_client.get(url).status_code == 200
        return len(captured)

    plan_version_publish(plan=plan, spec=SPEC)
    small = queries()
    for _ in range(4):
        plan_version_publish(plan=plan, spec=SPEC)
    assert queries() == small
