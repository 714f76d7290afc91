"""The wallet services, one behaviour at a time, with exact amounts (docs/charging.md, examples D
and G). The autouse fixture in conftest.py reconciles the whole ledger after every test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from core.errors import IdempotencyConflict, NotFound, ValidationFailed
from tests.wallets.helpers import (
    ZERO,
    add_grant,
    balance,
    fundings,
    grant_state,
    remaining,
    row_counts,
    system_balance,
)
from wallets.errors import HoldNotPending, InsufficientFunds, NegativeBalance
from wallets.models import Account, Grant, Hold, LedgerEntry, LedgerTransaction
from wallets.services import (
    AlreadyReversed,
    GrantHeld,
    GrantNotActive,
    HoldLeg,
    grant_expire,
    grant_void,
    grants_expire_due,
    hold_capture,
    hold_create,
    hold_expire,
    hold_void,
    holds_expire_due,
    wallet_adjust,
    wallet_draw,
    wallet_refund,
    wallet_transfer,
)

D = Decimal
pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, tzinfo=UTC)


def usd(wallet_id: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return balance(wallet_id, "USD")


def draw(wallet_id: int, amount: str, key: str, *, meter: str | None = None, asset: str = "USD"):
    return wallet_draw(
        wallet_id=wallet_id, asset=asset, amount=amount, idempotency_key=key, meter=meter
    )


# --- burn-down order ---------------------------------------------------------------------------


def test_burn_down_order_full(wallet, time_machine):
    """Scoped allowance first for its meter; then priority; then earliest expiry (no expiry
    last); then oldest — even when the older grant has the larger id."""
    time_machine.move_to(T0, tick=False)
    w = wallet.pk

    def make(gid: str, purpose: str, priority: int, expires_days=None, meters=None):
        time_machine.shift(60)  # every grant one minute younger than the one before
        expires = T0 + timedelta(days=expires_days) if expires_days else None
        add_grant(
            w,
            "1.00",
            purpose=purpose,
            priority=priority,
            expires_at=expires,
            meters=meters,
            grant_id=gid,
        )

    make("g-oldest-z", "paid", 5)  # priority 5, no expiry, oldest of the two
    make("g-newer-a", "paid", 5)  # priority 5, no expiry, newer; smaller id
    make("g-exp-late", "promotional", 5, expires_days=20)
    make("g-exp-soon", "promotional", 5, expires_days=3)
    make("g-pri-1", "paid", 1)
    make("g-allow-image", "allowance", 50, meters=["image"])  # scoped allowance: first
    make("g-promo-image", "promotional", 0, meters=["image"])  # scoped, not allowance: by priority
    make("g-allow-chat", "allowance", 0, meters=["chat"])  # never for image

    result = draw(w, "6.50", "k-image", meter="image")
    assert fundings(result) == [
        ("g-allow-image", D("1")),
        ("g-promo-image", D("1")),
        ("g-pri-1", D("1")),
        ("g-exp-soon", D("1")),
        ("g-exp-late", D("1")),
        ("g-oldest-z", D("1")),
        ("g-newer-a", D("0.5")),
    ]
    assert remaining("g-newer-a") == D("0.50")
    assert remaining("g-allow-chat") == D("1.00")
    assert usd(w) == (D("1.50"), ZERO, ZERO, D("1.50"))
    assert system_balance("revenue") == D("6.50")


def test_burn_down_without_meter_skips_every_scoped_grant(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    add_grant(w, "5", purpose="allowance", priority=0, meters=["image"], grant_id="scoped")
    time_machine.shift(1)
    add_grant(w, "2", priority=9, grant_id="late-expiry", expires_at=T0 + timedelta(days=9))
    time_machine.shift(1)
    add_grant(w, "2", priority=9, grant_id="no-expiry")
    time_machine.shift(1)
    add_grant(w, "2", priority=9, grant_id="early-expiry", expires_at=T0 + timedelta(days=2))
    result = draw(w, "5", "k1")
    assert fundings(result) == [
        ("early-expiry", D("2")),
        ("late-expiry", D("2")),
        ("no-expiry", D("1")),
    ]
    assert remaining("scoped") == D("5")
    with pytest.raises(InsufficientFunds):
        draw(w, "1.01", "k2")  # 1.00 unscoped left; the scoped 5.00 never pays for no meter


def test_scoped_allowance_precedes_lower_priority_unscoped_grant(wallet):
    w = wallet.pk
    add_grant(w, "10", purpose="paid", priority=0, grant_id="paid")
    add_grant(w, "3", purpose="allowance", priority=100, meters=["tokens"], grant_id="allow")
    result = draw(w, "4", "k1", meter="tokens")
    assert fundings(result) == [("allow", D("3")), ("paid", D("1"))]


def test_example_d_custom_asset_credits(wallet, credits, time_machine):
    """docs/charging.md example D: promotional 100 (priority 1, expiring 2026-01-31) and paid 1,000
    (priority 10, cost 10.00 USD); 30 images at 4 credits = 120 → 100 promotional then 20
    paid; paid remaining 980."""
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    promo = add_grant(
        w,
        "100",
        asset="credits",
        purpose="promotional",
        priority=1,
        expires_at=datetime(2026, 1, 31, tzinfo=UTC),
    )
    paid = add_grant(
        w, "1000", asset="credits", purpose="paid", priority=10, cost=Money("10.00", "USD")
    )
    images = 30
    result = draw(w, str(images * 4), "event-1", meter="image", asset="credits")
    assert result.amount == D("120")
    assert fundings(result) == [(promo.pk, D("100")), (paid.pk, D("20"))]
    assert remaining(promo.pk) == ZERO
    assert remaining(paid.pk) == D("980")
    assert balance(w, "credits") == (D("980"), ZERO, ZERO, D("980"))
    assert Grant.objects.get(pk=paid.pk).cost == Money("10.00", "USD")
    assert system_balance("revenue", "credits") == D("120")
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)  # credits never touch the USD account


def test_scoped_grants_never_pay_for_other_meters(wallet):
    w = wallet.pk
    g = add_grant(w, "50", purpose="allowance", meters=["image"])
    before = row_counts()
    for meter in ("chat", None):
        with pytest.raises(InsufficientFunds):
            draw(w, "1", f"k-{meter}", meter=meter)
    assert row_counts() == before
    assert remaining(g.pk) == D("50")
    assert fundings(draw(w, "1", "k-image", meter="image")) == [(g.pk, D("1"))]
    with pytest.raises(InsufficientFunds):
        hold_create(wallet_id=w, hold_id="h-chat", legs=[HoldLeg("USD", D("1"), "chat")])


def test_expired_but_unswept_grant_is_never_drawn(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    soon = add_grant(w, "10", priority=0, expires_at=T0 + timedelta(hours=1))
    other = add_grant(w, "5", priority=100)
    time_machine.move_to(T0 + timedelta(hours=2), tick=False)
    assert grant_state(soon.pk) == ("active", D("10"), ZERO)  # not swept yet
    with pytest.raises(InsufficientFunds) as declined:
        draw(w, "6", "k1")
    assert D(declined.value.extra["available"]) == D("5")
    with pytest.raises(InsufficientFunds):
        hold_create(wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("5.01"))])
    assert fundings(draw(w, "5", "k2")) == [(other.pk, D("5"))]
    assert grants_expire_due() == [soon.pk]
    assert grant_state(soon.pk) == ("expired", ZERO, ZERO)
    assert system_balance("expiry") == D("10")
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)


# --- all or nothing, idempotency, bad input ------------------------------------------------------


def test_draw_is_all_or_nothing(wallet):
    w = wallet.pk
    a = add_grant(w, "3.00", priority=1)
    b = add_grant(w, "4.00", priority=2)
    before = row_counts()
    with pytest.raises(InsufficientFunds) as declined:
        draw(w, "7.01", "k1")
    assert D(declined.value.extra["available"]) == D("7")
    assert row_counts() == before
    assert (remaining(a.pk), remaining(b.pk)) == (D("3"), D("4"))
    assert usd(w) == (D("7"), ZERO, ZERO, D("7"))
    # the declined key was not consumed: the same request succeeds once it can be paid
    add_grant(w, "0.01", priority=3)
    assert draw(w, "7.01", "k1").amount == D("7.01")
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)


def test_draw_idempotency_replay_and_conflict(wallet):
    w = wallet.pk
    g = add_grant(w, "10")
    first = draw(w, "2.50", "event-42", meter="chat")
    txns, entries = LedgerTransaction.objects.count(), LedgerEntry.objects.count()
    again = draw(w, "2.50", "event-42", meter="chat")
    assert again == first
    assert again.transaction_id == first.transaction_id
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count()) == (txns, entries)
    assert remaining(g.pk) == D("7.50")
    with pytest.raises(IdempotencyConflict):
        draw(w, "2.51", "event-42", meter="chat")
    with pytest.raises(IdempotencyConflict):
        draw(w, "2.50", "event-42", meter="image")
    assert remaining(g.pk) == D("7.50")
    assert usd(w) == (D("7.50"), ZERO, ZERO, D("7.50"))


def test_grant_create_is_idempotent_by_grant_id(wallet):
    w = wallet.pk
    g1 = add_grant(w, "10", grant_id="top-up-1", reference="order 1")
    g2 = add_grant(w, "10", grant_id="top-up-1", reference="order 1")
    assert g1.pk == g2.pk == "top-up-1"
    assert Grant.objects.count() == 1
    assert usd(w) == (D("10"), ZERO, ZERO, D("10"))
    with pytest.raises(IdempotencyConflict):
        add_grant(w, "11", grant_id="top-up-1", reference="order 1")
    assert usd(w) == (D("10"), ZERO, ZERO, D("10"))


def test_grant_over_precise_for_asset_is_rejected(wallet, credits):
    w = wallet.pk
    before = row_counts()
    with pytest.raises(ValidationFailed) as usd_err:
        add_grant(w, "1.001")
    assert "amount" in usd_err.value.errors
    with pytest.raises(ValidationFailed):
        add_grant(w, "1.5", asset="credits")
    with pytest.raises(ValidationFailed):
        wallet_transfer(
            from_wallet_id=w, to_wallet_id=w + 1, asset="USD", amount="0.001", idempotency_key="t"
        )
    with pytest.raises(ValidationFailed):
        wallet_adjust(wallet_id=w, asset="credits", amount="0.5", reason="x", idempotency_key="a")
    assert row_counts() == before
    # trailing zeros are not precision: 2.000 credits is 2 credits
    assert add_grant(w, "2.000", asset="credits").amount == D("2")
    assert add_grant(w, "1.10").amount == D("1.1")


BAD_AMOUNTS = [
    "-1",
    "-0.01",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e18",
    "1000000000000000000",
    "1e30",
    "0.0000000000001",  # 13 places
    1.5,
    0.1,
    True,
    "abc",
    "",
    "1,5",
    None,
    [],
]


@pytest.mark.parametrize("bad", [*BAD_AMOUNTS, "0", 0], ids=repr)
def test_bad_amounts_are_rejected_and_nothing_is_written(wallet, make_wallet, bad):
    w = wallet.pk
    other = make_wallet().pk
    add_grant(w, "100")
    before = row_counts()
    calls = {
        "draw": lambda: draw(w, bad, "k-draw"),
        "grant": lambda: add_grant(w, bad),
        "transfer": lambda: wallet_transfer(
            from_wallet_id=w, to_wallet_id=other, asset="USD", amount=bad, idempotency_key="k-t"
        ),
        "adjust": lambda: wallet_adjust(
            wallet_id=w, asset="USD", amount=bad, reason="why", idempotency_key="k-a"
        ),
        "hold": lambda: hold_create(wallet_id=w, hold_id="h-bad", legs=[HoldLeg("USD", bad)]),
    }
    if bad in ("0", 0):
        del calls["hold"]  # a hold leg (or a capture) of zero is allowed
    if isinstance(bad, str) and bad.startswith("-"):
        del calls["adjust"]  # a negative adjustment is legal; see the test below
    for name, call in calls.items():
        with pytest.raises(ValidationFailed):
            call()
            pytest.fail(f"{name} accepted {bad!r}")
    assert row_counts() == before
    assert usd(w) == (D("100"), ZERO, ZERO, D("100"))


@pytest.mark.parametrize("bad", ["-NaN", "-Infinity", "-1e18", "-0.0000000000001", "-0"])
def test_bad_negative_adjustments_are_rejected(wallet, bad):
    add_grant(wallet.pk, "5")
    before = row_counts()
    with pytest.raises(ValidationFailed):
        wallet_adjust(
            wallet_id=wallet.pk, asset="USD", amount=bad, reason="why", idempotency_key="k"
        )
    assert row_counts() == before


def test_capture_rejects_bad_amounts(wallet):
    add_grant(wallet.pk, "10")
    hold = hold_create(wallet_id=wallet.pk, hold_id="h1", legs=[HoldLeg("USD", D("4"))])
    before = row_counts()
    for bad in BAD_AMOUNTS:
        with pytest.raises(ValidationFailed):
            hold_capture(hold_id=hold.pk, charges=[HoldLeg("USD", bad)])
    assert row_counts() == before
    assert Hold.objects.get(pk="h1").status == "pending"


def test_amounts_just_below_the_limit_are_accepted_and_exact(wallet):
    """10^18 is refused; a grant just below it is accepted (it used to raise
    decimal.InvalidOperation from check_amount: 30 digits at 12 places) and kept exactly."""
    w = wallet.pk
    g = add_grant(w, "999999999999999999.99")
    assert g.remaining == D("999999999999999999.99")
    assert add_grant(w, "10000000000000000", asset="JPY").amount == D("10000000000000000")
    r = draw(w, "0.000000000001", "tiny")
    assert fundings(r) == [(g.pk, D("0.000000000001"))]
    assert remaining(g.pk) == D("999999999999999999.989999999999")
    assert usd(w)[0] == D("999999999999999999.989999999999")
    with pytest.raises(ValidationFailed):
        add_grant(w, "1000000000000000000.00")


def test_amounts_with_30_significant_digits_are_exact(wallet):
    w = wallet.pk
    g = add_grant(w, "999999999999999999.99")
    r = draw(w, "12345678901234567.123456789012", "big")
    assert r.amount == D("12345678901234567.123456789012")
    assert remaining(g.pk) == D("987654321098765432.866543210988")
    assert usd(w)[0] == D("987654321098765432.866543210988")


def test_unknown_wallet_asset_grant_transaction(wallet):
    with pytest.raises(NotFound):
        draw(wallet.pk, "1", "k1", asset="NOPE")
    with pytest.raises(NotFound):
        draw(wallet.pk + 1000, "1", "k2")
    with pytest.raises(NotFound):
        grant_void(grant_id="missing")
    with pytest.raises(NotFound):
        wallet_refund(transaction_id=10**12, idempotency_key="r")
    with pytest.raises(NotFound):
        hold_void(hold_id="missing")


# --- refunds -------------------------------------------------------------------------------------


def test_refund_returns_value_to_the_grants_it_came_from_once(wallet):
    w = wallet.pk
    a = add_grant(w, "10", priority=1)
    b = add_grant(w, "10", priority=2)
    charge = draw(w, "15", "charge-1")
    assert fundings(charge) == [(a.pk, D("10")), (b.pk, D("5"))]
    assert system_balance("revenue") == D("15")
    refund = wallet_refund(transaction_id=charge.transaction_id, idempotency_key="refund-1")
    assert sorted(fundings(refund)) == sorted([(a.pk, D("10")), (b.pk, D("15") - D("10"))])
    assert refund.amount == D("15")
    assert (remaining(a.pk), remaining(b.pk)) == (D("10"), D("10"))
    assert usd(w) == (D("20"), ZERO, ZERO, D("20"))
    assert system_balance("revenue") == ZERO
    txn = LedgerTransaction.objects.get(pk=refund.transaction_id)
    assert (txn.kind, txn.reverses_id) == ("refund", charge.transaction_id)
    # the same key replays; another key is refused
    assert wallet_refund(transaction_id=charge.transaction_id, idempotency_key="refund-1") == refund
    with pytest.raises(AlreadyReversed):
        wallet_refund(transaction_id=charge.transaction_id, idempotency_key="refund-2")
    with pytest.raises(ValidationFailed):  # a refund is not a charge
        wallet_refund(transaction_id=refund.transaction_id, idempotency_key="refund-3")
    assert usd(w) == (D("20"), ZERO, ZERO, D("20"))


def test_refund_to_a_grant_that_expired_meanwhile_goes_to_expiry(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    short = add_grant(w, "10", priority=1, expires_at=T0 + timedelta(days=1))
    long = add_grant(w, "10", priority=2)
    charge = draw(w, "12", "c1")
    charge2 = draw(w, "1", "c2")
    assert fundings(charge) == [(short.pk, D("10")), (long.pk, D("2"))]
    time_machine.move_to(T0 + timedelta(days=2), tick=False)
    # expired but not swept yet: its part goes to the expiry account, the rest back to `long`
    refund = wallet_refund(transaction_id=charge.transaction_id, idempotency_key="r1")
    assert fundings(refund) == [(long.pk, D("2"))]
    assert refund.amount == D("2")
    assert grant_state(short.pk) == ("active", ZERO, ZERO)
    assert remaining(long.pk) == D("9")
    assert system_balance("expiry") == D("10")
    assert system_balance("revenue") == D("1")
    assert usd(w) == (D("9"), ZERO, ZERO, D("9"))
    # after the sweep (status expired) the same holds
    assert grants_expire_due() == [short.pk]
    assert wallet_refund(transaction_id=charge2.transaction_id, idempotency_key="r2").amount == D(
        "1"
    )
    assert remaining(long.pk) == D("10")


def test_refund_of_a_grant_swept_by_expiry(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    short = add_grant(w, "10", priority=1, expires_at=T0 + timedelta(days=1))
    charge = draw(w, "4", "c1")
    time_machine.move_to(T0 + timedelta(days=2), tick=False)
    assert grants_expire_due() == [short.pk]
    assert system_balance("expiry") == D("6")
    refund = wallet_refund(transaction_id=charge.transaction_id, idempotency_key="r1")
    assert refund.amount == ZERO
    assert fundings(refund) == []
    assert grant_state(short.pk) == ("expired", ZERO, ZERO)
    assert system_balance("expiry") == D("10")
    assert system_balance("revenue") == ZERO
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)


def test_refund_of_a_capture(wallet):
    w = wallet.pk
    g = add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("5"))])
    _, txn = hold_capture(hold_id="h1", charges=[HoldLeg("USD", D("3"))])
    assert usd(w) == (D("7"), ZERO, ZERO, D("7"))
    refund = wallet_refund(transaction_id=txn.pk, idempotency_key="r")
    assert fundings(refund) == [(g.pk, D("3"))]
    assert usd(w) == (D("10"), ZERO, ZERO, D("10"))


# --- void and expiry -----------------------------------------------------------------------------


def test_void_removes_the_remaining_amount_once(wallet):
    w = wallet.pk
    g = add_grant(w, "10", purpose="paid")
    draw(w, "3", "c1")
    assert system_balance("receivables") == D("-10")
    voided = grant_void(grant_id=g.pk, reason="chargeback")
    assert (voided.status, voided.remaining) == ("voided", ZERO)
    assert grant_state(g.pk) == ("voided", ZERO, ZERO)
    assert system_balance("receivables") == D("-3")
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)
    txns = LedgerTransaction.objects.count()
    assert grant_void(grant_id=g.pk).status == "voided"  # twice: nothing more
    assert LedgerTransaction.objects.count() == txns
    with pytest.raises(InsufficientFunds):
        draw(w, "0.01", "c2")
    promo = add_grant(w, "4", purpose="promotional")
    grant_void(grant_id=promo.pk)
    assert system_balance("promotional") == ZERO


def test_void_is_refused_while_held(wallet):
    w = wallet.pk
    g = add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("1"))])
    with pytest.raises(GrantHeld):
        grant_void(grant_id=g.pk)
    assert grant_state(g.pk) == ("active", D("10"), D("1"))
    hold_void(hold_id="h1")
    assert grant_void(grant_id=g.pk).status == "voided"
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)


def test_void_of_an_expired_grant_is_refused(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    g = add_grant(wallet.pk, "10", expires_at=T0 + timedelta(hours=1))
    time_machine.move_to(T0 + timedelta(hours=2), tick=False)
    assert grants_expire_due() == [g.pk]
    with pytest.raises(GrantNotActive):
        grant_void(grant_id=g.pk)


def test_expiry_moves_remaining_to_expiry_account_and_is_idempotent(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    g = add_grant(w, "10", purpose="promotional", expires_at=T0 + timedelta(days=1))
    keep = add_grant(w, "1", purpose="paid")
    draw(w, "4", "c1")
    assert grant_expire(grant_id=g.pk) is None  # not due
    assert grants_expire_due() == []
    time_machine.move_to(T0 + timedelta(days=1), tick=False)  # expires_at <= now: due
    assert grants_expire_due() == [g.pk]
    assert grant_state(g.pk) == ("expired", ZERO, ZERO)
    assert Grant.objects.get(pk=g.pk).closed_at == T0 + timedelta(days=1)
    assert system_balance("expiry") == D("6")
    assert usd(w) == (D("1"), ZERO, ZERO, D("1"))
    txns = LedgerTransaction.objects.count()
    assert grants_expire_due() == []
    assert grant_expire(grant_id=g.pk) is None
    assert LedgerTransaction.objects.count() == txns
    assert remaining(keep.pk) == D("1")


def test_expiry_waits_for_holds_on_the_grant(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    g = add_grant(w, "10", expires_at=T0 + timedelta(hours=1))
    hold_create(wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("2"))], expires_in=7200)
    time_machine.move_to(T0 + timedelta(hours=1, minutes=1), tick=False)
    assert grants_expire_due() == []  # held: waits
    assert grant_state(g.pk) == ("active", D("10"), D("2"))
    # the hold is still live: its capture draws from the reserved (now lapsed) grant
    hold_capture(hold_id="h1", charges=[HoldLeg("USD", D("2"))])
    assert grants_expire_due() == [g.pk]
    assert system_balance("expiry") == D("8")
    assert system_balance("revenue") == D("2")
    assert usd(w) == (ZERO, ZERO, ZERO, ZERO)


# --- adjustments and transfers --------------------------------------------------------------------


def test_adjustments_positive_and_negative_with_reason(wallet):
    w = wallet.pk
    up = wallet_adjust(
        wallet_id=w, asset="USD", amount="5.00", reason="goodwill", idempotency_key="a1"
    )
    assert up.kind == "adjust"
    assert LedgerTransaction.objects.get(pk=up.pk).kind == "adjust"
    grant = Grant.objects.get(wallet_id=w)
    assert (grant.purpose, grant.amount, grant.remaining) == ("promotional", D("5"), D("5"))
    assert system_balance("adjustments") == D("-5")
    add_grant(w, "1", priority=99)
    down = wallet_adjust(
        wallet_id=w, asset="USD", amount="-5.5", reason="correction", idempotency_key="a2"
    )
    assert down.kind == "adjust"
    assert sorted(e.amount for e in down.entries.all()) == [D("-5"), D("-0.5"), D("5.5")]
    assert system_balance("adjustments") == D("0.5")
    assert usd(w) == (D("0.5"), ZERO, ZERO, D("0.5"))
    assert down.metadata == {"reason": "correction", "actor": ""}
    # replay, conflict, reason required, all or nothing
    assert wallet_adjust(
        wallet_id=w, asset="USD", amount="-5.5", reason="correction", idempotency_key="a2"
    ).pk == (down.pk)
    with pytest.raises(IdempotencyConflict):
        wallet_adjust(wallet_id=w, asset="USD", amount="5.5", reason="x", idempotency_key="a2")
    before = row_counts()
    for reason in ("", "   ", None):
        with pytest.raises(ValidationFailed):
            wallet_adjust(wallet_id=w, asset="USD", amount="1", reason=reason, idempotency_key="a3")
    with pytest.raises(InsufficientFunds):
        wallet_adjust(wallet_id=w, asset="USD", amount="-0.51", reason="y", idempotency_key="a4")
    assert row_counts() == before
    assert usd(w) == (D("0.5"), ZERO, ZERO, D("0.5"))


def test_transfer_between_wallets(wallet, make_wallet):
    a, b = wallet.pk, make_wallet().pk
    g = add_grant(a, "10")
    moved = wallet_transfer(
        from_wallet_id=a, to_wallet_id=b, asset="USD", amount="4.25", idempotency_key="t1"
    )
    assert (moved.wallet_id, moved.purpose, moved.amount, moved.remaining) == (
        b,
        "paid",
        D("4.25"),
        D("4.25"),
    )
    assert remaining(g.pk) == D("5.75")
    assert usd(a) == (D("5.75"), ZERO, ZERO, D("5.75"))
    assert usd(b) == (D("4.25"), ZERO, ZERO, D("4.25"))
    again = wallet_transfer(
        from_wallet_id=a, to_wallet_id=b, asset="USD", amount="4.25", idempotency_key="t1"
    )
    assert again.pk == moved.pk
    before = row_counts()
    with pytest.raises(InsufficientFunds):
        wallet_transfer(
            from_wallet_id=a, to_wallet_id=b, asset="USD", amount="5.76", idempotency_key="t2"
        )
    with pytest.raises(ValidationFailed):
        wallet_transfer(
            from_wallet_id=a, to_wallet_id=a, asset="USD", amount="1", idempotency_key="t3"
        )
    with pytest.raises(IdempotencyConflict):
        wallet_transfer(
            from_wallet_id=a, to_wallet_id=b, asset="USD", amount="1", idempotency_key="t1"
        )
    assert row_counts() == before
    assert usd(a)[0] + usd(b)[0] == D("10")


def test_a_transfer_shows_in_the_ledger_of_both_wallets(wallet, make_wallet):
    from wallets.selectors import wallet_transactions

    a, b = wallet.pk, make_wallet().pk
    add_grant(a, "10")
    wallet_transfer(
        from_wallet_id=a, to_wallet_id=b, asset="USD", amount="4.25", idempotency_key="t1"
    )

    def moved_in(wallet_id):
        txn = next(
            t
            for t in wallet_transactions(wallet_id=wallet_id)
            if t.kind == "grant" and t.counterparty_wallet_id == a
        )
        return sum(e.amount for e in txn.entries.all() if e.account.wallet_id == wallet_id)

    assert moved_in(a) == D("-4.25")  # the sender sees what left
    assert moved_in(b) == D("4.25")  # the receiver what arrived
    c = make_wallet().pk
    assert list(wallet_transactions(wallet_id=c)) == []


def test_transfer_into_a_wallet_in_debt_pays_the_debt_first(wallet, make_wallet):
    """A transfer is a paid top-up of the receiving wallet: like any top-up it settles debt."""
    a, b = wallet.pk, make_wallet().pk
    add_grant(a, "10")
    add_grant(b, "1")
    hold_create(wallet_id=b, hold_id="hb", legs=[HoldLeg("USD", D("1"))])
    hold_capture(hold_id="hb", charges=[HoldLeg("USD", D("3"))])
    assert usd(b) == (D("-2"), ZERO, D("2"), D("-2"))
    moved = wallet_transfer(
        from_wallet_id=a, to_wallet_id=b, asset="USD", amount="5", idempotency_key="t1"
    )
    assert usd(b) == (D("3"), ZERO, ZERO, D("3"))
    assert remaining(moved.pk) == D("3")
    assert draw(b, "3", "after").amount == D("3")


# --- holds: example G, capture less/equal/more, debt ----------------------------------------------


def test_example_g_hold_and_capture(wallet):
    """docs/charging.md example G: 10.00 available, 0.000002 per token; hold for 2,000,000 tokens →
    held 4.00, available 6.00; capture 1,200,000 → charged 2.40, 1.60 released, available
    7.60."""
    w = wallet.pk
    g = add_grant(w, "10.00")
    price = D("0.000002")
    hold = hold_create(
        wallet_id=w, hold_id="llm-call-1", legs=[HoldLeg("USD", price * 2_000_000, "tokens")]
    )
    assert hold.status == "pending"
    assert usd(w) == (D("10.00"), D("4.00"), ZERO, D("6.00"))
    assert grant_state(g.pk) == ("active", D("10"), D("4"))
    captured, txn = hold_capture(
        hold_id=hold.pk, charges=[HoldLeg("USD", price * 1_200_000, "tokens")]
    )
    assert captured.status == "captured"
    assert Hold.objects.get(pk=hold.pk).capture_transaction_id == txn.pk
    assert sorted(e.amount for e in txn.entries.all()) == [D("-2.40"), D("2.40")]
    assert usd(w) == (D("7.60"), ZERO, ZERO, D("7.60"))
    assert grant_state(g.pk) == ("active", D("7.60"), ZERO)
    assert system_balance("revenue") == D("2.40")
    with pytest.raises(HoldNotPending):
        hold_capture(hold_id=hold.pk, charges=[HoldLeg("USD", D("1"))])
    with pytest.raises(HoldNotPending):
        hold_void(hold_id=hold.pk)
    assert usd(w) == (D("7.60"), ZERO, ZERO, D("7.60"))


def test_capture_equal_to_hold(wallet):
    w = wallet.pk
    add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("4"))])
    hold_capture(hold_id="h", charges=[HoldLeg("USD", D("4"))])
    assert usd(w) == (D("6"), ZERO, ZERO, D("6"))


def test_capture_more_than_held_draws_the_excess_from_other_grants(wallet):
    w = wallet.pk
    a = add_grant(w, "4", priority=1)
    b = add_grant(w, "6", priority=2)
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("4"))])
    assert grant_state(a.pk) == ("active", D("4"), D("4"))
    _, txn = hold_capture(hold_id="h", charges=[HoldLeg("USD", D("5"))])
    assert (remaining(a.pk), remaining(b.pk)) == (ZERO, D("5"))
    assert usd(w) == (D("5"), ZERO, ZERO, D("5"))
    assert sorted((e.grant_id, e.amount) for e in txn.entries.filter(grant__isnull=False)) == (
        sorted([(a.pk, D("-4")), (b.pk, D("-1"))])
    )


def test_capture_more_than_held_uses_the_unreserved_rest_of_the_same_grant(wallet):
    """One grant of 10.00, hold 4.00, capture 5.00: the wallet can pay, so no debt."""
    w = wallet.pk
    g = add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("4"))])
    hold_capture(hold_id="h", charges=[HoldLeg("USD", D("5"))])
    assert usd(w) == (D("5"), ZERO, ZERO, D("5"))
    assert remaining(g.pk) == D("5")
    assert draw(w, "5", "after").amount == D("5")


def test_capture_beyond_every_grant_leaves_debt_until_topped_up(wallet):
    w = wallet.pk
    g = add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("4"))])
    _, txn = hold_capture(hold_id="h", charges=[HoldLeg("USD", D("12.50"))])
    assert remaining(g.pk) == ZERO
    assert usd(w) == (D("-2.50"), ZERO, D("2.50"), D("-2.50"))
    assert system_balance("revenue") == D("12.50")
    debt_entries = txn.entries.filter(grant__isnull=True, account__wallet__isnull=False)
    assert [e.amount for e in debt_entries] == [D("-2.50")]
    before = row_counts()
    with pytest.raises(NegativeBalance):
        draw(w, "0.01", "blocked")
    with pytest.raises(NegativeBalance):
        hold_create(wallet_id=w, hold_id="h2", legs=[HoldLeg("USD", D("0.01"))])
    with pytest.raises(NegativeBalance):
        wallet_adjust(wallet_id=w, asset="USD", amount="-0.01", reason="r", idempotency_key="a")
    assert row_counts() == before
    # a scoped allowance does not pay debt (it may only pay for its meter)
    scoped = add_grant(w, "1", purpose="allowance", meters=["tokens"])
    assert remaining(scoped.pk) == D("1")
    assert usd(w) == (D("-1.50"), ZERO, D("2.50"), D("-1.50"))
    # a top-up pays the debt first
    top_up = add_grant(w, "3.00")
    assert top_up.remaining == D("0.50")
    assert remaining(top_up.pk) == D("0.50")
    assert usd(w) == (D("1.50"), ZERO, ZERO, D("1.50"))
    grant_txn = LedgerTransaction.objects.filter(kind="grant").order_by("-id").first()
    assert grant_txn.metadata["settled_debt"] == "2.500000000000"
    assert draw(w, "0.50", "after").amount == D("0.50")
    assert remaining(top_up.pk) == ZERO


def test_top_up_smaller_than_debt_lowers_it(wallet):
    w = wallet.pk
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("0"))])
    hold_capture(hold_id="h", charges=[HoldLeg("USD", D("5"))])
    assert usd(w) == (D("-5"), ZERO, D("5"), D("-5"))
    g = add_grant(w, "2", purpose="promotional")
    assert remaining(g.pk) == ZERO
    assert usd(w) == (D("-3"), ZERO, D("3"), D("-3"))


def test_refund_of_a_capture_that_made_debt_lowers_the_debt(wallet):
    w = wallet.pk
    add_grant(w, "1")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("1"))])
    _, txn = hold_capture(hold_id="h", charges=[HoldLeg("USD", D("3"))])
    assert usd(w) == (D("-2"), ZERO, D("2"), D("-2"))
    wallet_refund(transaction_id=txn.pk, idempotency_key="r")
    assert usd(w) == (D("1"), ZERO, ZERO, D("1"))
    assert system_balance("revenue") == ZERO


def test_refund_of_a_capture_whose_debt_was_already_paid(wallet):
    """Capture 3 against 1 → debt 2; a top-up of 5 pays it (remaining 3); refunding the
    capture must give the customer back all 3 (posted 6), not fail on the debt >= 0 check."""
    w = wallet.pk
    add_grant(w, "1")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("1"))])
    _, txn = hold_capture(hold_id="h", charges=[HoldLeg("USD", D("3"))])
    add_grant(w, "5")
    assert usd(w) == (D("3"), ZERO, ZERO, D("3"))
    wallet_refund(transaction_id=txn.pk, idempotency_key="r")
    assert usd(w) == (D("6"), ZERO, ZERO, D("6"))
    assert system_balance("revenue") == ZERO


# --- holds: void, expiry, treated as expired on read ----------------------------------------------


def test_hold_void_releases_and_is_idempotent(wallet):
    w = wallet.pk
    g = add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("7"))])
    assert usd(w) == (D("10"), D("7"), ZERO, D("3"))
    with pytest.raises(InsufficientFunds):
        draw(w, "3.01", "c1")
    voided = hold_void(hold_id="h")
    assert voided.status == "voided"
    assert usd(w) == (D("10"), ZERO, ZERO, D("10"))
    assert grant_state(g.pk) == ("active", D("10"), ZERO)
    assert hold_void(hold_id="h").status == "voided"  # again: nothing changes
    with pytest.raises(HoldNotPending):
        hold_capture(hold_id="h", charges=[HoldLeg("USD", D("1"))])
    assert LedgerTransaction.objects.filter(kind="capture").count() == 0
    assert draw(w, "10", "c2").amount == D("10")


def test_hold_is_all_or_nothing_and_idempotent(wallet):
    w = wallet.pk
    add_grant(w, "5")
    before = row_counts()
    with pytest.raises(InsufficientFunds):
        hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("5.01"))])
    assert row_counts() == before
    h1 = hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("5"))])
    h2 = hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("5"))])
    assert h1.pk == h2.pk
    assert usd(w) == (D("5"), D("5"), ZERO, ZERO)
    with pytest.raises(IdempotencyConflict):
        hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("4"))])


def test_hold_with_two_legs_in_one_asset_reserves_both(wallet):
    """Two legs in the same asset (e.g. a meter priced in its own unit): the second leg must
    see what the first reserved."""
    w = wallet.pk
    g = add_grant(w, "10")
    with pytest.raises(InsufficientFunds):
        hold_create(
            wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("6")), HoldLeg("USD", D("6"))]
        )
    hold_create(wallet_id=w, hold_id="h2", legs=[HoldLeg("USD", D("6")), HoldLeg("USD", D("4"))])
    assert grant_state(g.pk) == ("active", D("10"), D("10"))
    assert usd(w) == (D("10"), D("10"), ZERO, ZERO)
    hold_create(
        wallet_id=w,
        hold_id="h3",
        legs=[HoldLeg("USD", D("0"), partial=True), HoldLeg("USD", D("1"), partial=True)],
    )
    assert usd(w) == (D("10"), D("10"), ZERO, ZERO)


def test_hold_expiry_by_the_sweep(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("3"))], expires_in=60)
    assert holds_expire_due() == []
    assert hold_expire(hold_id="h") is None  # not due
    time_machine.move_to(T0 + timedelta(seconds=61), tick=False)
    assert holds_expire_due() == ["h"]
    hold = Hold.objects.get(pk="h")
    assert (hold.status, hold.resolved_at) == ("expired", T0 + timedelta(seconds=61))
    assert usd(w) == (D("10"), ZERO, ZERO, D("10"))
    assert holds_expire_due() == []
    assert hold_expire(hold_id="h") is None
    with pytest.raises(HoldNotPending):
        hold_capture(hold_id="h", charges=[HoldLeg("USD", D("1"))])
    assert usd(w) == (D("10"), ZERO, ZERO, D("10"))


def test_hold_past_expiry_is_expired_on_read(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("3"))], expires_in=60)
    time_machine.move_to(T0 + timedelta(seconds=60), tick=False)  # expires_at == now: expired
    with pytest.raises(HoldNotPending) as refused:
        hold_capture(hold_id="h", charges=[HoldLeg("USD", D("1"))])
    assert refused.value.extra == {"hold_status": "expired"}
    with pytest.raises(HoldNotPending):
        hold_void(hold_id="h")
    assert Hold.objects.get(pk="h").status == "pending"  # not swept yet
    assert usd(w) == (D("10"), D("3"), ZERO, D("7"))
    assert holds_expire_due() == ["h"]


def test_draw_after_a_hold_expired_uses_its_funds(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h", legs=[HoldLeg("USD", D("8"))], expires_in=60)
    with pytest.raises(InsufficientFunds):
        draw(w, "9", "too-early")
    time_machine.move_to(T0 + timedelta(seconds=61), tick=False)
    assert draw(w, "9", "after-expiry").amount == D("9")
    assert Hold.objects.get(pk="h").status == "expired"
    assert usd(w) == (D("1"), ZERO, ZERO, D("1"))
    assert holds_expire_due() == []


def test_hold_after_a_hold_expired_uses_its_funds(wallet, time_machine):
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="h1", legs=[HoldLeg("USD", D("8"))], expires_in=60)
    time_machine.move_to(T0 + timedelta(seconds=61), tick=False)
    hold_create(wallet_id=w, hold_id="h2", legs=[HoldLeg("USD", D("10"))])
    assert Hold.objects.get(pk="h1").status == "expired"
    assert usd(w) == (D("10"), D("10"), ZERO, ZERO)


def test_transfer_and_adjust_after_a_hold_expired_use_its_funds(wallet, make_wallet, time_machine):
    """Every debit treats a hold past its expiry as expired, not only wallet_draw."""
    time_machine.move_to(T0, tick=False)
    a, b = wallet.pk, make_wallet().pk
    add_grant(a, "10")
    hold_create(wallet_id=a, hold_id="h1", legs=[HoldLeg("USD", D("8"))], expires_in=60)
    time_machine.move_to(T0 + timedelta(seconds=61), tick=False)
    wallet_transfer(from_wallet_id=a, to_wallet_id=b, asset="USD", amount="5", idempotency_key="t")
    wallet_adjust(wallet_id=a, asset="USD", amount="-5", reason="fix", idempotency_key="a")
    assert usd(a) == (ZERO, ZERO, ZERO, ZERO)
    assert Hold.objects.get(pk="h1").status == "expired"


def test_capture_excess_uses_funds_of_a_hold_that_expired(wallet, time_machine):
    """The excess of a capture is a debit: a hold past its expiry must not turn it into debt."""
    time_machine.move_to(T0, tick=False)
    w = wallet.pk
    add_grant(w, "10")
    hold_create(wallet_id=w, hold_id="lapsed", legs=[HoldLeg("USD", D("6"))], expires_in=60)
    hold_create(wallet_id=w, hold_id="live", legs=[HoldLeg("USD", D("2"))], expires_in=3600)
    time_machine.move_to(T0 + timedelta(seconds=61), tick=False)
    hold_capture(hold_id="live", charges=[HoldLeg("USD", D("5"))])
    assert usd(w) == (D("5"), ZERO, ZERO, D("5"))
    assert Hold.objects.get(pk="lapsed").status == "expired"


def test_capture_in_two_assets(wallet, credits):
    w = wallet.pk
    add_grant(w, "100", asset="credits", purpose="allowance", meters=["image"])
    add_grant(w, "10")
    hold_create(
        wallet_id=w,
        hold_id="h",
        legs=[HoldLeg("credits", D("150"), "image", partial=True), HoldLeg("USD", D("2"))],
    )
    assert balance(w, "credits") == (D("100"), D("100"), ZERO, ZERO)
    assert usd(w) == (D("10"), D("2"), ZERO, D("8"))
    hold_capture(
        hold_id="h", charges=[HoldLeg("credits", D("80"), "image"), HoldLeg("USD", D("1.5"))]
    )
    assert balance(w, "credits") == (D("20"), ZERO, ZERO, D("20"))
    assert usd(w) == (D("8.5"), ZERO, ZERO, D("8.5"))


def test_system_accounts_keep_no_balance_row(wallet):
    add_grant(wallet.pk, "10")
    draw(wallet.pk, "4", "c")
    system = Account.objects.filter(wallet__isnull=True)
    assert system.count() >= 2
    assert all((a.posted, a.held, a.debt) == (ZERO, ZERO, ZERO) for a in system)
