"""Every periodic job of docs/billing-cycle.md for one instant, in order. `manage.py run_billing
--as-of T` and the Celery tasks run the same functions."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections
from django.utils import timezone

from billing.periodic.close import subscriptions_close_due
from billing.periodic.failures import RunFailure
from billing.periodic.finalize import finalize_due
from billing.periodic.rating import rating_run
from billing.subscriptions import subscription_trial_end_due
from wallets.selectors import ledger_reconcile
from wallets.services import grants_expire_due, holds_expire_due

logger = logging.getLogger(__name__)


@dataclass
class RunReport:
    as_of: datetime
    steps: dict[str, int] = field(default_factory=dict)
    drifts: list[str] = field(default_factory=list)
    failures: list[RunFailure] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"billing run as of {self.as_of.isoformat()}"]
        out += [f"  {name}: {count}" for name, count in self.steps.items()]
        out += [f"  failed: {failure.text()}" for failure in self.failures]
        out += [f"  ledger drift: {d}" for d in self.drifts] or ["  ledger: no drift"]
        return out


Outcome = tuple[int, list[RunFailure]]


def _step(now: datetime, step: str, shard: tuple[int, int] | None) -> Outcome:
    """Close or rate one shard (or all): how many, and what failed."""
    if step == "close":
        failures: list[RunFailure] = []
        return subscriptions_close_due(now=now, shard=shard, failures=failures), failures
    rating = rating_run(now=now, shard=shard)
    return rating.counters, rating.failures


def _shard_work(now: datetime, step: str, shard: tuple[int, int]) -> Outcome:
    """One process's part of a parallel run (a fresh database connection of its own)."""
    connections.close_all()
    try:
        return _step(now, step, shard)
    finally:
        connections.close_all()


def _sharded(now: datetime, step: str, workers: int) -> Outcome:
    """``step`` over every subscription, split into ``workers`` shards run by as many
    processes at once (each close and rating is idempotent and per subscription, so shards
    never touch the same rows)."""
    if workers <= 1:
        return _step(now, step, None)
    connections.close_all()  # a forked process must not share the parent's connection
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_shard_work, now, step, (k, workers)) for k in range(workers)]
        outcomes = [f.result() for f in futures]
    return sum(n for n, _ in outcomes), [f for _, failed in outcomes for f in failed]


def billing_run(*, as_of: datetime | None = None, workers: int = 1) -> RunReport:
    """Expire holds and grants, rate open periods, close ended periods (invoices, allowance
    refresh, scheduled changes), end trials, finalize due drafts, reconcile. Each step is
    idempotent, so running twice — or on two machines at once — equals running once.
    ``workers`` > 1 closes periods and rates prices in that many processes (shards of the
    subscriptions).

    A subscription whose close or rating fails, or a draft whose finalization fails, is left
    as it was (its own transaction rolls back), logged and recorded as an alert, and the run
    goes on with the others; the report counts them (``failed``) and names each, and the
    next run retries them."""
    now = as_of or timezone.now()
    report = RunReport(as_of=now)
    report.steps["holds expired"] = len(holds_expire_due(now=now))
    closed, failed = _sharded(now, "close", workers)
    report.steps["periods closed"] = closed
    report.failures += failed
    report.steps["grants expired"] = len(grants_expire_due(now=now))
    report.steps["trials ended"] = len(subscription_trial_end_due(now=now))
    rated, failed = _sharded(now, "rate", workers)
    report.steps["prices rated"] = rated
    report.failures += failed
    report.steps["invoices finalized"] = finalize_due(now=now, failures=report.failures)
    report.steps["failed"] = len(report.failures)
    report.drifts = [str(d) for d in ledger_reconcile()]
    for line in report.lines():
        logger.info(line)
    return report
