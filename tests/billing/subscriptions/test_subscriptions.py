"""The subscription lifecycle services: seats, plan changes, cancellation, trials.

Expected amounts are computed by hand with ``Fraction`` (never with ``plans.pricing.prorate``)
and rounded half-up to the 12 places a ``ChargeItem`` stores."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
import time_machine

from billing.models import ChargeItem, Subscription
from billing.selectors.subscriptions import subscription_get
from billing.subscriptions import (
    PeriodNotCurrent,
    SubscriptionCanceled,
    SubscriptionEnded,
    subscription_allowances_issue,
    subscription_cancel,
    subscription_create,
    subscription_plan_change,
    subscription_seats_change,
    subscription_trial_end_due,
)
from core.errors import NotFound, ValidationFailed
from plans.models import Price
from plans.pricing import round_money
from tests.factories import CustomerFactory, MeterFactory, PublishedPlanFactory, tokens_price
from wallets.models import Grant
from wallets.selectors import wallet_balances
from wallets.services import GrantHeld, HoldLeg, hold_create, wallet_draw

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def half_up_12(value: Fraction) -> Decimal:
    """``value`` rounded half-up (away from zero) to 12 places, by integer arithmetic."""
    scaled = abs(value) * 10**12
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole if value >= 0 else -whole).scaleb(-12)


@pytest.fixture
def catalog(db):
    MeterFactory(llm_tokens=True)
    return {
        "team": PublishedPlanFactory(code="team", name="Team", seats=True),
        "pro": PublishedPlanFactory(code="pro", name="Pro", hybrid=True),
        "scale": PublishedPlanFactory(
            code="scale",
            name="Scale",
            base_fee="99.00",
            seat_price="10.00",
            prices=[tokens_price("3000000")],
        ),
        "metered": PublishedPlanFactory(
            code="metered", name="Metered", base_fee="30.00", in_arrears=True
        ),
        "trial": PublishedPlanFactory(code="trial", name="Trial", seats=True, trial=True),
        "yearly": PublishedPlanFactory(code="yearly", name="Yearly", yearly=True),
        "euro": PublishedPlanFactory(code="euro", name="Euro", currency="EUR", base_fee="10.00"),
        "euro_free": PublishedPlanFactory(code="euro_free", name="Euro free", currency="EUR"),
    }


def subscribe(customer, plan: str, when: str, seats: int = 1) -> Subscription:
    with time_machine.travel(when, tick=False):
        return subscription_create(customer=customer, plan=plan, seats=seats)


def items(sub: Subscription) -> list[tuple]:
    return [
        (i.kind, i.description, i.currency_id, i.quantity, i.unit_price, i.amount)
        for i in ChargeItem.objects.filter(subscription=sub).order_by("id")
    ]


def tokens(customer) -> Decimal:
    return {b.asset: b.posted for b in wallet_balances(wallet_id=customer.wallet_id)}["tokens"]


# --- helpers of the test itself -------------------------------------------------------------


def test_half_up_12_rounds_ties_away_from_zero():
    assert half_up_12(Fraction(1, 2 * 10**12)) == Decimal("0.000000000001")
    assert half_up_12(Fraction(-1, 2 * 10**12)) == Decimal("-0.000000000001")
    assert half_up_12(Fraction(1, 3 * 10**12)) == Decimal("0.000000000000")
    assert half_up_12(Fraction(640, 31)) == Decimal("20.645161290323")


# --- periods ----------------------------------------------------------------------------------


def test_month_end_anchor_period_and_proration(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-31T00:00:00Z", seats=1)
    assert (sub.current_period_start, sub.current_period_end) == (
        at("2026-01-31T00:00:00"),
        at("2026-02-28T00:00:00"),
    )
    with time_machine.travel("2026-02-14T00:00:00Z", tick=False):
        subscription_seats_change(subscription=sub, seats=2)
    # 14 of the period's 28 days are left: 20.00 × 14/28 = 10 exactly
    assert items(sub) == [
        (
            "proration",
            "1 seat added 2026-02-14, prorated 14/28 days",
            "USD",
            Decimal(1),
            Decimal("20"),
            Decimal("10.000000000000"),
        )
    ]


# --- seats ----------------------------------------------------------------------------------


def test_example_b_seats_added_mid_period(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=5)
    with time_machine.travel("2026-01-16T00:00:00Z", tick=False):
        changed = subscription_seats_change(subscription=sub, seats=7)
    assert (changed.seats, changed.next_seats) == (7, None)
    sub.refresh_from_db()
    assert sub.seats == 7
    item = ChargeItem.objects.get(subscription=sub)
    expected = half_up_12(Fraction(2 * 20 * 16, 31))
    assert expected == Decimal("20.645161290323")
    assert (
        item.kind,
        item.description,
        item.currency_id,
        item.quantity,
        item.unit_price,
        item.amount,
        item.period_start,
        item.period_end,
        item.source,
        item.customer_id,
        item.invoice_id,
    ) == (
        "proration",
        "2 seats added 2026-01-16, prorated 16/31 days",
        "USD",
        Decimal(2),
        Decimal("20"),
        expected,
        at("2026-01-16T00:00:00"),
        at("2026-02-01T00:00:00"),
        f"seats:{sub.pk}:2026-01-16T00:00:00+00:00:5->7",
        customer.pk,
        None,
    )
    assert round_money(item.amount, 2) == Decimal("20.65")
    assert item.computation["covered_microseconds"] == 16 * 86_400 * 10**6
    assert item.computation["period_microseconds"] == 31 * 86_400 * 10**6
    assert item.computation["exact"].startswith("20.64516129032258064516129032258064516")


def test_seats_added_back_dated_and_at_a_time_of_day(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-20T09:00:00Z", tick=False):
        subscription_seats_change(subscription=sub, seats=2, at=at("2026-01-16T12:00:00"))
        # 15.5 of 31 days left: 20 × 1,339,200 / 2,678,400 = 10 exactly
        assert items(sub) == [
            (
                "proration",
                "1 seat added 2026-01-16 12:00:00 UTC, prorated 1339200/2678400 seconds",
                "USD",
                Decimal(1),
                Decimal("20"),
                Decimal("10.000000000000"),
            )
        ]
        with pytest.raises(ValidationFailed) as future:
            subscription_seats_change(subscription=sub, seats=3, at=at("2026-01-21T00:00:00"))
        assert future.value.errors == {"at": ["Not in the future."]}
        with pytest.raises(ValidationFailed) as early:
            subscription_seats_change(subscription=sub, seats=3, at=at("2025-12-31T00:00:00"))
        assert early.value.errors == {"at": ["Not before the current period starts."]}
    assert Subscription.objects.get(pk=sub.pk).seats == 2
    assert ChargeItem.objects.count() == 1


def test_seat_decrease_waits_for_period_end_and_credits_nothing(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=7)
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        changed = subscription_seats_change(subscription=sub, seats=5)
        assert (changed.seats, changed.next_seats) == (7, 5)
        sub.refresh_from_db()
        assert (sub.seats, sub.next_seats) == (7, 5)
        assert ChargeItem.objects.count() == 0
        # asking for the current number again cancels the scheduled decrease
        subscription_seats_change(subscription=sub, seats=7)
        sub.refresh_from_db()
        assert (sub.seats, sub.next_seats) == (7, None)
        # an increase replaces a scheduled decrease
        subscription_seats_change(subscription=sub, seats=4)
        subscription_seats_change(subscription=sub, seats=8)
        sub.refresh_from_db()
        assert (sub.seats, sub.next_seats) == (8, None)
    assert items(sub) == [
        (
            "proration",
            "1 seat added 2026-01-10, prorated 22/31 days",
            "USD",
            Decimal(1),
            Decimal("20"),
            half_up_12(Fraction(20 * 22, 31)),
        )
    ]
    assert half_up_12(Fraction(20 * 22, 31)) == Decimal("14.193548387097")


def test_same_seats_is_a_no_op(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=3)
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        same = subscription_seats_change(subscription=sub, seats=3)
    assert (same.seats, same.next_seats) == (3, None)
    assert ChargeItem.objects.count() == 0


def test_seats_on_a_plan_without_seat_price_cost_nothing(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        subscription_seats_change(subscription=sub, seats=3)
    sub.refresh_from_db()
    assert sub.seats == 3
    assert ChargeItem.objects.count() == 0


@pytest.mark.parametrize("seats", [-1, 1_000_001, True, "3", 2.0, None])
def test_bad_seats_are_refused(customer, catalog, seats):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        with pytest.raises(ValidationFailed) as exc:
            subscription_seats_change(subscription=sub, seats=seats)
    assert exc.value.errors == {"seats": ["An integer from 0 to 1000000."]}
    sub.refresh_from_db()
    assert (sub.seats, sub.next_seats) == (1, None)
    assert ChargeItem.objects.count() == 0


def test_seats_up_to_the_maximum_and_down_to_zero(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=0)
    with time_machine.travel("2026-01-01T00:00:00Z", tick=False):
        subscription_seats_change(subscription=sub, seats=1_000_000)
        subscription_seats_change(subscription=sub, seats=0)
    sub.refresh_from_db()
    assert (sub.seats, sub.next_seats) == (1_000_000, 0)
    # at the period's very start the whole period is left: no proration at all
    assert items(sub) == [
        (
            "proration",
            "1,000,000 seats added 2026-01-01, prorated 31/31 days",
            "USD",
            Decimal(1_000_000),
            Decimal("20"),
            Decimal("20000000.000000000000"),
        )
    ]


def test_trial_time_is_not_charged_for_added_seats(customer, catalog):
    sub = subscribe(customer, "trial", "2026-01-01T00:00:00Z", seats=1)
    assert (sub.status, sub.trial_ends_at) == ("trialing", at("2026-01-15T00:00:00"))
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        subscription_seats_change(subscription=sub, seats=2)
    item = ChargeItem.objects.get(subscription=sub)
    # charged from the trial's end: 17 of 31 days
    assert (item.description, item.amount, item.period_start, item.period_end) == (
        "1 seat added 2026-01-10, prorated 17/31 days",
        half_up_12(Fraction(20 * 17, 31)),
        at("2026-01-15T00:00:00"),
        at("2026-02-01T00:00:00"),
    )
    assert item.amount == Decimal("10.967741935484")


def test_seats_increase_in_a_period_not_yet_closed_is_refused(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=2)
    with time_machine.travel("2026-02-03T00:00:00Z", tick=False):
        with pytest.raises(PeriodNotCurrent) as exc:
            subscription_seats_change(subscription=sub, seats=3)
        assert (exc.value.code, exc.value.status) == ("period_not_current", 409)
        subscription_seats_change(subscription=sub, seats=1)  # a decrease waits anyway
    sub.refresh_from_db()
    assert (sub.seats, sub.next_seats) == (2, 1)
    assert ChargeItem.objects.count() == 0


# --- plan changes -----------------------------------------------------------------------------


def test_plan_change_now_credits_old_and_charges_new_for_the_rest_of_the_period(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=2)
    old_grant = Grant.objects.get(purpose="allowance")
    with time_machine.travel("2026-01-05T00:00:00Z", tick=False):
        wallet_draw(
            wallet_id=customer.wallet_id,
            asset="tokens",
            amount="250000",
            idempotency_key="usage-1",
            meter="llm_tokens",
        )
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        changed = subscription_plan_change(subscription=sub, plan_code="scale", when="now")
    assert (changed.plan_version_id, changed.next_plan_version_id) == (catalog["scale"].pk, None)
    sub.refresh_from_db()
    assert sub.plan_version_id == catalog["scale"].pk
    # 21 of January's 31 days are left
    credit = half_up_12(-Fraction(49 * 21, 31))
    base = half_up_12(Fraction(99 * 21, 31))
    seats = half_up_12(Fraction(2 * 10 * 21, 31))
    assert (credit, base, seats) == (
        Decimal("-33.193548387097"),
        Decimal("67.064516129032"),
        Decimal("13.548387096774"),
    )
    assert items(sub) == [
        (
            "proration",
            "Unused pro v1 base fee after plan change on 2026-01-11, prorated 21/31 days",
            "USD",
            Decimal(1),
            Decimal("49"),
            credit,
        ),
        (
            "proration",
            "scale v1 base fee from plan change on 2026-01-11, prorated 21/31 days",
            "USD",
            Decimal(1),
            Decimal("99"),
            base,
        ),
        (
            "proration",
            "2 seats on scale v1 from plan change on 2026-01-11, prorated 21/31 days",
            "USD",
            Decimal(2),
            Decimal("10"),
            seats,
        ),
    ]
    assert {
        (i.period_start, i.period_end) for i in ChargeItem.objects.filter(subscription=sub)
    } == {(at("2026-01-11T00:00:00"), at("2026-02-01T00:00:00"))}
    # the old allowance's rest (750,000) is voided; the new one is 3,000,000 × 21/31 rounded down
    old_grant.refresh_from_db()
    assert (old_grant.status, old_grant.remaining) == ("voided", Decimal(0))
    new_grant = Grant.objects.get(purpose="allowance", status="active")
    scale_price = Price.objects.get(plan_version=catalog["scale"])
    assert (
        new_grant.amount,
        new_grant.meters,
        new_grant.expires_at,
        new_grant.source,
    ) == (
        Decimal(2_032_258),
        ["llm_tokens"],
        at("2026-02-01T00:00:00"),
        f"allowance:{sub.pk}:{scale_price.pk}:2026-01-01T00:00:00+00:00"
        ":from:2026-01-11T00:00:00+00:00",
    )
    assert Fraction(3_000_000 * 21, 31) == Fraction(63_000_000, 31)  # 2,032,258.06…
    assert tokens(customer) == Decimal(2_032_258)


def test_plan_change_now_records_nothing_for_in_arrears_base_fees(customer, catalog):
    sub = subscribe(customer, "metered", "2026-01-01T00:00:00Z", seats=3)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="team", when="now")
    # no credit for metered's in-arrears base fee (the period close prorates it); seats charged
    assert items(sub) == [
        (
            "proration",
            "3 seats on team v1 from plan change on 2026-01-11, prorated 21/31 days",
            "USD",
            Decimal(3),
            Decimal("20"),
            half_up_12(Fraction(3 * 20 * 21, 31)),
        )
    ]
    assert half_up_12(Fraction(3 * 20 * 21, 31)) == Decimal("40.645161290323")


def test_plan_change_at_period_end_only_schedules_it(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=2)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        changed = subscription_plan_change(subscription=sub, plan_code="scale")
        assert changed.next_plan_version_id == catalog["scale"].pk
        sub.refresh_from_db()
        assert (sub.plan_version_id, sub.next_plan_version_id) == (
            catalog["pro"].pk,
            catalog["scale"].pk,
        )
        assert ChargeItem.objects.count() == 0
        assert list(Grant.objects.values_list("status", "amount")) == [
            ("active", Decimal(1_000_000))
        ]
        # the same request again changes nothing
        subscription_plan_change(subscription=sub, plan_code="scale", when="period_end")
        sub.refresh_from_db()
        assert sub.next_plan_version_id == catalog["scale"].pk
        # the current plan again drops the scheduled change
        subscription_plan_change(subscription=sub, plan_code="pro", when="period_end")
        sub.refresh_from_db()
        assert (sub.plan_version_id, sub.next_plan_version_id) == (catalog["pro"].pk, None)
        # and with nothing scheduled it is refused
        with pytest.raises(ValidationFailed) as same:
            subscription_plan_change(subscription=sub, plan_code="pro", when="period_end")
        assert same.value.errors == {"plan": ["Already on pro v1."]}
        with pytest.raises(ValidationFailed):
            subscription_plan_change(subscription=sub, plan_code="pro", when="now")


def test_plan_change_now_drops_a_scheduled_change(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="pro")
        subscription_plan_change(subscription=sub, plan_code="scale", when="now")
    sub.refresh_from_db()
    assert (sub.plan_version_id, sub.next_plan_version_id) == (catalog["scale"].pk, None)


def test_plan_change_uses_the_latest_version(customer, catalog):
    sub = subscribe(customer, "team", "2026-01-01T00:00:00Z", seats=1)
    v2 = PublishedPlanFactory(plan=catalog["pro"].plan, base_fee="59.00")
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="pro")
    sub.refresh_from_db()
    assert sub.next_plan_version_id == v2.pk


@pytest.mark.parametrize(
    ("plan", "when", "error", "errors"),
    [
        ("nope", "now", NotFound, {"plan": ["Unknown plan."]}),
        ("scale", "tomorrow", ValidationFailed, {"when": ["One of period_end, now."]}),
        ("", "now", ValidationFailed, {"plan": ["A plan code."]}),
        (
            "euro",
            "period_end",
            ValidationFailed,
            {"plan": ["The plan bills in EUR, the customer in USD."]},
        ),
        (
            "yearly",
            "now",
            ValidationFailed,
            {
                "when": [
                    "yearly v1 bills per year, the subscription per month: change at period_end."
                ]
            },
        ),
    ],
)
def test_bad_plan_changes_are_refused_and_write_nothing(
    customer, catalog, plan, when, error, errors
):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        with pytest.raises(error) as exc:
            subscription_plan_change(subscription=sub, plan_code=plan, when=when)
    assert exc.value.errors == errors
    sub.refresh_from_db()
    assert (sub.plan_version_id, sub.next_plan_version_id) == (catalog["pro"].pk, None)
    assert ChargeItem.objects.count() == 0
    assert Grant.objects.get().status == "active"


def test_plan_change_to_a_fee_free_plan_in_another_currency_is_allowed(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="euro_free", when="now")
    sub.refresh_from_db()
    assert sub.plan_version_id == catalog["euro_free"].pk
    assert [i[-1] for i in items(sub)] == [half_up_12(-Fraction(49 * 21, 31))]


def test_plan_change_now_is_refused_while_an_allowance_is_held(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        hold_create(
            wallet_id=customer.wallet_id,
            hold_id="h1",
            legs=[HoldLeg(asset="tokens", amount=Decimal(1000), meter="llm_tokens")],
        )
        with pytest.raises(GrantHeld):
            subscription_plan_change(subscription=sub, plan_code="scale", when="now")
    sub.refresh_from_db()
    assert sub.plan_version_id == catalog["pro"].pk
    assert ChargeItem.objects.count() == 0
    assert list(Grant.objects.values_list("status", flat=True)) == ["active"]


def test_plan_change_of_canceled_or_ended_subscriptions_is_refused(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_cancel(subscription=sub)
        with pytest.raises(SubscriptionCanceled) as canceled:
            subscription_plan_change(subscription=sub, plan_code="scale")
        assert (canceled.value.code, canceled.value.status) == ("subscription_canceled", 409)
        subscription_cancel(subscription=sub, when="now")
        with pytest.raises(SubscriptionEnded) as ended:
            subscription_plan_change(subscription=sub, plan_code="scale", when="now")
        assert (ended.value.code, ended.value.status) == ("subscription_ended", 409)
        with pytest.raises(SubscriptionEnded):
            subscription_seats_change(subscription=sub, seats=4)


def test_allowances_issue_prorated_rounds_down_to_the_unit_decimals(customer, catalog):
    MeterFactory(code="gpu", unit="gpu_hours")
    from wallets.models import Asset

    Asset.objects.filter(code="gpu_hours").update(decimals=2)
    PublishedPlanFactory(
        code="gpu",
        name="GPU",
        prices=[{"meter": "gpu", "included": "10", "model": "per_unit", "unit_price": "1"}],
    )
    sub = subscribe(customer, "gpu", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        grants = subscription_allowances_issue(
            subscription=sub, prorate_from=at("2026-01-11T00:00:00")
        )
        again = subscription_allowances_issue(
            subscription=sub, prorate_from=at("2026-01-11T00:00:00")
        )
    # 10 × 21/31 = 6.774… → 6.77
    assert [g.amount for g in grants] == [Decimal("6.77")]
    assert [g.pk for g in again] == [g.pk for g in grants]
    assert Grant.objects.filter(asset="gpu_hours").count() == 2


# --- cancellation -----------------------------------------------------------------------------


def test_cancel_at_period_end_keeps_it_live(customer, catalog):
    sub = subscribe(customer, "scale", "2026-01-01T00:00:00Z", seats=3)
    with time_machine.travel("2026-01-21T00:00:00Z", tick=False):
        canceled = subscription_cancel(subscription=sub)
    with time_machine.travel("2026-01-22T00:00:00Z", tick=False):
        again = subscription_cancel(subscription=sub, when="period_end")
    for row in (canceled, again, Subscription.objects.get(pk=sub.pk)):
        assert (
            row.status,
            row.cancel_at_period_end,
            row.canceled_at,
            row.ended_at,
            row.current_period_end,
        ) == ("canceled", True, at("2026-01-21T00:00:00"), None, at("2026-02-01T00:00:00"))
    assert ChargeItem.objects.count() == 0
    assert list(Grant.objects.values_list("status", flat=True)) == ["active"]


def test_cancel_at_period_end_drops_a_scheduled_plan_change(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_plan_change(subscription=sub, plan_code="scale")
        subscription_cancel(subscription=sub)
    sub.refresh_from_db()
    assert (sub.status, sub.next_plan_version_id) == ("canceled", None)


def test_cancel_now_credits_unused_time_and_voids_the_allowance(customer, catalog):
    sub = subscribe(customer, "scale", "2026-01-01T00:00:00Z", seats=3)
    with time_machine.travel("2026-01-21T00:00:00Z", tick=False):
        ended = subscription_cancel(subscription=sub, when="now")
    sub.refresh_from_db()
    for row in (ended, sub):
        assert (row.status, row.cancel_at_period_end, row.canceled_at, row.ended_at) == (
            "ended",
            False,
            at("2026-01-21T00:00:00"),
            at("2026-01-21T00:00:00"),
        )
    base = half_up_12(-Fraction(99 * 11, 31))
    seats = half_up_12(-Fraction(3 * 10 * 11, 31))
    assert (base, seats) == (Decimal("-35.129032258065"), Decimal("-10.645161290323"))
    assert items(sub) == [
        (
            "proration",
            "Unused scale v1 base fee after cancellation on 2026-01-21, prorated 11/31 days",
            "USD",
            Decimal(1),
            Decimal("99"),
            base,
        ),
        (
            "proration",
            "Unused 3 seats on scale v1 after cancellation on 2026-01-21, prorated 11/31 days",
            "USD",
            Decimal(3),
            Decimal("10"),
            seats,
        ),
    ]
    assert list(Grant.objects.values_list("status", "remaining")) == [("voided", Decimal(0))]
    assert tokens(customer) == 0
    with time_machine.travel("2026-01-22T00:00:00Z", tick=False):
        with pytest.raises(SubscriptionEnded) as exc:
            subscription_cancel(subscription=sub)
        assert (exc.value.code, exc.value.status) == ("subscription_ended", 409)
        # the customer may subscribe again
        fresh = subscription_create(customer=customer, plan="team")
    assert fresh.status == "active"


def test_cancel_now_after_a_period_end_cancel_ends_it(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-01-11T00:00:00Z", tick=False):
        subscription_cancel(subscription=sub)
    with time_machine.travel("2026-01-21T00:00:00Z", tick=False):
        subscription_cancel(subscription=sub, when="now")
    sub.refresh_from_db()
    assert (sub.status, sub.cancel_at_period_end, sub.canceled_at, sub.ended_at) == (
        "ended",
        False,
        at("2026-01-11T00:00:00"),
        at("2026-01-21T00:00:00"),
    )
    assert [i[-1] for i in items(sub)] == [half_up_12(-Fraction(49 * 11, 31))]


def test_cancel_now_during_the_trial_credits_only_the_time_after_it(customer, catalog):
    sub = subscribe(customer, "trial", "2026-01-01T00:00:00Z", seats=2)
    with time_machine.travel("2026-01-10T00:00:00Z", tick=False):
        subscription_cancel(subscription=sub, when="now")
    sub.refresh_from_db()
    assert sub.status == "ended"
    # only the time after the trial (17/31) was ever due: that is what is credited
    credit = half_up_12(-Fraction(2 * 20 * 17, 31))
    assert [i[-1] for i in items(sub) if i[0] == "proration"] == [credit]
    # no invoice billed the period (it started in the trial), so the final invoice's net
    # credit (−21.94) has no invoice to credit and stays an open charge item
    carried = ChargeItem.objects.get(subscription=sub, invoice__isnull=True)
    assert (carried.kind, carried.amount) == ("adjustment", round_money(credit, 2))


def test_cancel_bad_when_is_refused(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with pytest.raises(ValidationFailed) as exc:
        subscription_cancel(subscription=sub, when="tomorrow")
    assert exc.value.errors == {"when": ["One of period_end, now."]}
    sub.refresh_from_db()
    assert sub.status == "active"


def test_cancel_now_in_a_period_not_yet_closed_is_refused(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z", seats=1)
    with time_machine.travel("2026-02-02T00:00:00Z", tick=False):
        with pytest.raises(PeriodNotCurrent):
            subscription_cancel(subscription=sub, when="now")
        subscription_cancel(subscription=sub)
    sub.refresh_from_db()
    assert (sub.status, sub.canceled_at) == ("canceled", at("2026-02-02T00:00:00"))


# --- trials ---------------------------------------------------------------------------------


def test_trial_ends_when_due_once(customer, catalog):
    trialing = subscribe(customer, "trial", "2026-01-01T00:00:00Z", seats=1)
    later = subscribe(
        CustomerFactory(external_id="later"),
        "trial",
        "2026-01-02T00:00:00Z",
    )
    canceled = subscribe(
        CustomerFactory(external_id="gone"),
        "trial",
        "2026-01-01T00:00:00Z",
    )
    plain = subscribe(
        CustomerFactory(external_id="plain"),
        "team",
        "2026-01-01T00:00:00Z",
    )
    with time_machine.travel("2026-01-05T00:00:00Z", tick=False):
        subscription_cancel(subscription=canceled)
    assert trialing.trial_ends_at == at("2026-01-15T00:00:00")
    assert subscription_trial_end_due(now=at("2026-01-14T23:59:59")) == []
    assert subscription_trial_end_due(now=at("2026-01-15T00:00:00")) == [trialing.pk]
    assert subscription_trial_end_due(now=at("2026-01-15T00:00:00")) == []
    statuses = dict(Subscription.objects.values_list("pk", "status"))
    assert statuses == {
        trialing.pk: "active",
        later.pk: "trialing",
        canceled.pk: "canceled",
        plain.pk: "active",
    }
    with time_machine.travel("2026-01-16T00:00:00Z", tick=False):
        assert subscription_trial_end_due() == [later.pk]
    assert subscription_trial_end_due(now=at("2026-03-01T00:00:00"), batch=1) == []


def test_trial_end_due_in_batches(catalog):
    subs = [
        subscribe(
            CustomerFactory(external_id=f"c{n}", name=f"C{n}"),
            "trial",
            "2026-01-01T00:00:00Z",
        )
        for n in range(5)
    ]
    assert subscription_trial_end_due(now=at("2026-01-15T00:00:00"), batch=2) == [
        s.pk for s in subs
    ]
    assert set(Subscription.objects.values_list("status", flat=True)) == {"active"}


# --- reads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["x", "0", "-1", "1.5", "", "99999999999999999999", "١", None])
def test_subscription_get_unknown_ids(customer, catalog, bad):
    subscribe(customer, "pro", "2026-01-01T00:00:00Z")
    with pytest.raises(NotFound):
        subscription_get(subscription_id=bad)


def test_subscription_get(customer, catalog):
    sub = subscribe(customer, "pro", "2026-01-01T00:00:00Z")
    assert subscription_get(subscription_id=str(sub.pk)).pk == sub.pk
    assert subscription_get(subscription_id=sub.pk).pk == sub.pk
