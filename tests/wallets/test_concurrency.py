"""docs/quality.md 5–8 on real PostgreSQL: many threads, each with its own database connection,
against the same wallet rows. No sleeps: threads start together at a barrier and the pool
waits for every call."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from tests.factories import GrantFactory, WalletFactory
from tests.wallets.helpers import balance, system_balance
from wallets.errors import HoldNotPending, InsufficientFunds
from wallets.models import Grant, Hold, IdempotencyRecord, LedgerTransaction
from wallets.services import (
    AlreadyReversed,
    HoldLeg,
    grant_create,
    hold_capture,
    hold_create,
    hold_expire,
    hold_void,
    wallet_draw,
    wallet_refund,
    wallet_transfer,
)

D = Decimal
ZERO = Decimal(0)
THREADS = 16

pytestmark = pytest.mark.django_db(transaction=True)


class Outcome:
    """What one concurrent call did: its result, or the exception it raised."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.seconds = 0.0

    @property
    def kind(self) -> str:
        return "ok" if self.error is None else type(self.error).__name__


def run_concurrently(
    calls: Sequence[Callable[[], Any]], *, threads: int = THREADS, barrier: bool = False
) -> list[Outcome]:
    """Run every call on a pool of threads; each call uses (and closes) its own connection.
    With ``barrier`` (needs len(calls) <= threads) all calls start at the same instant."""
    gate = threading.Barrier(len(calls), timeout=60) if barrier else None

    def run(call: Callable[[], Any]) -> Outcome:
        if gate is not None:
            gate.wait()
        started = time.perf_counter()
        try:
            outcome = Outcome(result=call())
        except Exception as exc:
            outcome = Outcome(error=exc)
        finally:
            connections.close_all()
        outcome.seconds = time.perf_counter() - started
        return outcome

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, calls))


def kinds(outcomes: list[Outcome]) -> Counter:
    return Counter(o.kind for o in outcomes)


def errors(outcomes: list[Outcome]) -> str:
    """For a failed assertion: every distinct error, and the slowest call."""
    distinct = sorted({f"{o.kind}: {o.error}" for o in outcomes if o.error is not None})
    return f"slowest call {max(o.seconds for o in outcomes):.1f}s; errors: {distinct[:10]}"


def test_concurrent_draws_accept_exactly_what_the_wallet_can_pay():
    """(5) 200 concurrent debits of 1.00 against exactly 37.00 → 37 accepted, 163 declined."""
    w = WalletFactory(owner="race:draws").pk
    grants = [
        GrantFactory(wallet=w, amount=a, priority=p).pk
        for a, p in (("10.00", 1), ("20.00", 2), ("7.00", 3))
    ]
    calls = [
        (lambda i=i: wallet_draw(wallet_id=w, asset="USD", amount="1.00", idempotency_key=f"e{i}"))
        for i in range(200)
    ]
    outcomes = run_concurrently(calls)
    assert kinds(outcomes) == Counter({"ok": 37, "InsufficientFunds": 163}), errors(outcomes)
    assert balance(w) == (ZERO, ZERO, ZERO, ZERO)
    assert [Grant.objects.get(pk=g).remaining for g in grants] == [ZERO, ZERO, ZERO]
    assert system_balance("revenue") == D("37")
    assert LedgerTransaction.objects.filter(kind="draw").count() == 37
    assert IdempotencyRecord.objects.filter(scope="wallets.draw").count() == 37
    assert len({o.result.transaction_id for o in outcomes if o.error is None}) == 37


def test_concurrent_holds_then_concurrent_captures_and_voids():
    """(5) for holds: 100 holds of 1.00 against 25.00 → 25; then 12 captures of 0.60 and 13
    voids, all at once, together with draws competing for what the voids release."""
    w = WalletFactory(owner="race:holds").pk
    GrantFactory(wallet=w, amount="25.00")
    calls = [
        (lambda i=i: hold_create(wallet_id=w, hold_id=f"h{i}", legs=[HoldLeg("USD", D("1.00"))]))
        for i in range(100)
    ]
    outcomes = run_concurrently(calls)
    assert kinds(outcomes) == Counter({"ok": 25, "InsufficientFunds": 75}), errors(outcomes)
    assert balance(w) == (D("25"), D("25"), ZERO, ZERO)
    held = sorted(o.result.pk for o in outcomes if o.error is None)
    assert Hold.objects.filter(status="pending").count() == 25

    capture, void = held[:12], held[12:]
    calls = [
        (lambda h=h: hold_capture(hold_id=h, charges=[HoldLeg("USD", D("0.60"))])) for h in capture
    ]
    calls += [(lambda h=h: hold_void(hold_id=h)) for h in void]
    # 20 draws of 1.00 race for the 13.00 + 12 x 0.40 = 17.80 the holds give back
    calls += [
        (lambda i=i: wallet_draw(wallet_id=w, asset="USD", amount="1", idempotency_key=f"d{i}"))
        for i in range(20)
    ]
    outcomes = run_concurrently(calls)
    assert kinds(outcomes[:25]) == Counter({"ok": 25}), errors(outcomes[:25])
    draws_ok = sum(1 for o in outcomes[25:] if o.error is None)
    assert all(isinstance(o.error, InsufficientFunds) for o in outcomes[25:] if o.error)
    assert Counter(Hold.objects.values_list("status", flat=True)) == Counter(
        {"captured": 12, "voided": 13}
    )
    posted = D("25") - D("12") * D("0.60") - draws_ok
    assert balance(w) == (posted, ZERO, ZERO, posted)
    assert system_balance("revenue") == D("7.20") + draws_ok


def test_capture_void_and_expire_race_on_one_hold():
    """(8) For each hold, 2 captures, 2 voids and 2 expiries start at the same instant:
    the hold leaves pending once, exactly one capture at most, balances exact."""
    w = WalletFactory(owner="race:resolve").pk
    GrantFactory(wallet=w, amount="100.00")
    later = timezone.now() + timedelta(days=1)  # the expiry racers see the hold as due
    finals: Counter = Counter()
    for i in range(20):
        hold_id = f"race-{i}"
        hold_create(wallet_id=w, hold_id=hold_id, legs=[HoldLeg("USD", D("2.00"))])
        calls = [
            lambda h=hold_id: hold_capture(hold_id=h, charges=[HoldLeg("USD", D("1.50"))]),
            lambda h=hold_id: hold_capture(hold_id=h, charges=[HoldLeg("USD", D("1.50"))]),
            lambda h=hold_id: hold_void(hold_id=h),
            lambda h=hold_id: hold_void(hold_id=h),
            lambda h=hold_id: hold_expire(hold_id=h, now=later),
            lambda h=hold_id: hold_expire(hold_id=h, now=later),
        ]
        outcomes = run_concurrently(calls, barrier=True)
        captures, voids, expiries = outcomes[0:2], outcomes[2:4], outcomes[4:6]
        final = Hold.objects.get(pk=hold_id).status
        finals[final] += 1
        assert final in ("captured", "voided", "expired")
        # captures: exactly one wins when the hold ended captured, else none
        assert [o.kind for o in captures].count("ok") == (1 if final == "captured" else 0)
        assert all(isinstance(o.error, HoldNotPending) for o in captures if o.error)
        # voids: refused unless the hold ended voided (a void that finds it already voided
        # returns it unchanged)
        for o in voids:
            if final == "voided":
                assert o.error is None or isinstance(o.error, HoldNotPending)
                assert o.error is not None or o.result.status == "voided"
            else:
                assert isinstance(o.error, HoldNotPending)
        assert any(o.error is None for o in voids) == (final == "voided")
        # expiries: exactly one returns the hold when it ended expired, the others None
        assert all(o.error is None for o in expiries)
        assert sum(o.result is not None for o in expiries) == (1 if final == "expired" else 0)
        assert LedgerTransaction.objects.filter(kind="capture", reference=hold_id).count() == (
            1 if final == "captured" else 0
        )
        assert balance(w)[1] == ZERO
    captured = finals["captured"]
    assert sum(finals.values()) == 20
    posted = D("100") - D("1.50") * captured
    assert balance(w) == (posted, ZERO, ZERO, posted)
    assert system_balance("revenue") == D("1.50") * captured


def test_opposite_transfers_never_deadlock():
    """(6) 50 transfers A→B and 50 B→A at once, with draws on both wallets in between:
    no deadlock (it would surface as an exception), totals conserved."""
    a = WalletFactory(owner="race:a").pk
    b = WalletFactory(owner="race:b").pk
    for w in (a, b):
        GrantFactory(wallet=w, amount="100.00")
    calls = []
    for i in range(50):
        calls.append(
            lambda i=i: wallet_transfer(
                from_wallet_id=a, to_wallet_id=b, asset="USD", amount="1", idempotency_key=f"ab{i}"
            )
        )
        calls.append(
            lambda i=i: wallet_transfer(
                from_wallet_id=b, to_wallet_id=a, asset="USD", amount="1", idempotency_key=f"ba{i}"
            )
        )
        if i % 2 == 0:
            for w in (a, b):
                calls.append(
                    lambda i=i, w=w: wallet_draw(
                        wallet_id=w, asset="USD", amount="0.25", idempotency_key=f"d{w}-{i}"
                    )
                )
    outcomes = run_concurrently(calls)
    assert kinds(outcomes) == Counter({"ok": 150}), errors(outcomes)
    assert balance(a) == (D("93.75"), ZERO, ZERO, D("93.75"))
    assert balance(b) == (D("93.75"), ZERO, ZERO, D("93.75"))
    assert system_balance("revenue") == D("12.50")
    assert Grant.objects.filter(purpose="paid").count() == 102


def test_opposite_transfers_between_wallets_without_accounts():
    """Both transfers create both accounts at once (insert order must not deadlock); each is
    declined for want of funds, never with a database error."""
    for i in range(15):
        a = WalletFactory(owner=f"fresh:{i}:a").pk
        b = WalletFactory(owner=f"fresh:{i}:b").pk
        calls = [
            lambda src=src, dst=dst, key=key: wallet_transfer(
                from_wallet_id=src, to_wallet_id=dst, asset="EUR", amount="1", idempotency_key=key
            )
            for src, dst, key in ((a, b, f"x{i}"), (b, a, f"y{i}"))
        ]
        outcomes = run_concurrently(calls, barrier=True)
        assert kinds(outcomes) == Counter({"InsufficientFunds": 2}), errors(outcomes)


def test_same_idempotency_key_concurrently_is_charged_once():
    """(7) The same event id from 10 clients at once: charged once, one answer for all."""
    w = WalletFactory(owner="race:idem").pk
    GrantFactory(wallet=w, amount="10.00")
    outcomes = run_concurrently(
        [
            lambda: wallet_draw(
                wallet_id=w, asset="USD", amount="2.50", idempotency_key="evt-1", meter="chat"
            )
        ]
        * 10,
        barrier=True,
    )
    assert kinds(outcomes) == Counter({"ok": 10}), errors(outcomes)
    results = [o.result for o in outcomes]
    assert all(r == results[0] for r in results)
    assert len({r.transaction_id for r in results}) == 1
    assert balance(w) == (D("7.50"), ZERO, ZERO, D("7.50"))
    assert LedgerTransaction.objects.filter(kind="draw").count() == 1

    # refunds of that charge: the same key → one refund, one answer
    charge = results[0].transaction_id
    outcomes = run_concurrently(
        [lambda: wallet_refund(transaction_id=charge, idempotency_key="refund-1")] * 10,
        barrier=True,
    )
    assert kinds(outcomes) == Counter({"ok": 10}), errors(outcomes)
    assert len({o.result.transaction_id for o in outcomes}) == 1
    assert balance(w) == (D("10"), ZERO, ZERO, D("10"))


def test_different_refund_keys_concurrently_reverse_once():
    w = WalletFactory(owner="race:refund").pk
    GrantFactory(wallet=w, amount="10.00")
    charge = wallet_draw(wallet_id=w, asset="USD", amount="4", idempotency_key="c").transaction_id
    outcomes = run_concurrently(
        [
            (lambda i=i: wallet_refund(transaction_id=charge, idempotency_key=f"r{i}"))
            for i in range(10)
        ],
        barrier=True,
    )
    assert kinds(outcomes) == Counter({"ok": 1, "AlreadyReversed": 9}), errors(outcomes)
    assert all(isinstance(o.error, AlreadyReversed) for o in outcomes if o.error)
    assert balance(w) == (D("10"), ZERO, ZERO, D("10"))
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1


def test_same_grant_id_concurrently_grants_once():
    w = WalletFactory(owner="race:grant").pk
    outcomes = run_concurrently(
        [
            lambda: grant_create(
                wallet_id=w, asset="USD", amount="9.99", purpose="paid", grant_id="top-up-7"
            )
        ]
        * 10,
        barrier=True,
    )
    assert kinds(outcomes) == Counter({"ok": 10}), errors(outcomes)
    assert {o.result.pk for o in outcomes} == {"top-up-7"}
    assert Grant.objects.count() == 1
    assert balance(w) == (D("9.99"), ZERO, ZERO, D("9.99"))
    assert LedgerTransaction.objects.filter(kind="grant").count() == 1

    # and the same hold id: one hold
    outcomes = run_concurrently(
        [lambda: hold_create(wallet_id=w, hold_id="hold-7", legs=[HoldLeg("USD", D("5"))])] * 10,
        barrier=True,
    )
    assert kinds(outcomes) == Counter({"ok": 10}), errors(outcomes)
    assert Hold.objects.count() == 1
    assert balance(w) == (D("9.99"), D("5"), ZERO, D("4.99"))
