"""Finalization of due drafts (docs/invoices.md): every draft whose grace period has passed
is finalized by the run, each in its own transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.invoicing import invoice_finalize_if_due, plan_cache
from billing.models import Alert, Invoice
from billing.periodic.failures import (
    RunFailure,
    run_failure_record,
    run_failures_open,
    run_failures_resolve,
)


def invoices_finalize_due(
    *, now: datetime | None = None, batch: int = 500, failures: list[RunFailure] | None = None
) -> list[int]:
    """Finalize every draft whose grace period (``INVOICE_GRACE_HOURS`` after ``issued_at``)
    has passed, oldest first; returns the ids it finalized.

    Each invoice is finalized in its own transaction, locked with ``SKIP LOCKED`` and
    re-checked under the lock: two runs at once never finalize one invoice twice (one skips
    what the other holds), a crash loses at most the invoice in flight, and running again
    finalizes what is left. One whose finalization fails stays a draft, is logged and
    recorded as an alert (appended to ``failures`` when given), and the others go on."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.BILLFOLD.get("INVOICE_GRACE_HOURS", 24))
    finalized: list[int] = []
    last = 0
    alerted = run_failures_open(kind=Alert.Kind.FINALIZE_FAILED)
    with plan_cache():  # plan versions and prices read once for all of them
        while True:
            ids = list(
                Invoice.objects.filter(
                    status=Invoice.Status.DRAFT, issued_at__lte=cutoff, pk__gt=last
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                run_failures_resolve(
                    kind=Alert.Kind.FINALIZE_FAILED, ids=alerted.intersection(finalized)
                )
                return finalized
            for pk in ids:
                try:
                    with transaction.atomic():
                        done = invoice_finalize_if_due(invoice_id=pk, cutoff=cutoff, now=now)
                        if done is None:  # finalized meanwhile, or another run holds it
                            continue
                except Exception as exc:
                    failure = run_failure_record(
                        kind=Alert.Kind.FINALIZE_FAILED, exc=exc, invoice_id=pk
                    )
                    if failures is not None:
                        failures.append(failure)
                    continue
                finalized.append(pk)
            last = ids[-1]


def finalize_due(*, now: datetime, failures: list[RunFailure] | None = None) -> int:
    """Finalize drafts whose grace period has passed; returns how many."""
    return len(invoices_finalize_due(now=now, failures=failures))
