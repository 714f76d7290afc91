"""What the billing run could not do: a subscription whose period would not close or whose
prices would not rate, a draft that would not finalize.

Each of those is done in its own transaction, so one that fails rolls back alone and the run
goes on with the others. The failure is logged with its traceback and recorded for staff as
an ``Alert`` (kinds ``billing.close_failed``, ``billing.rating_failed``,
``billing.finalize_failed``) with the reason. The subscription stays due (the invoice stays a
draft), so the next run tries again; a failure that repeats updates its open alert (one per
subscription and period, or per invoice: ``attempts``, ``last_failed_at``, ``reason``) rather
than adding one, and the run that succeeds resolves it (``resolved_at``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import Alert, Customer, Invoice, Subscription

logger = logging.getLogger(__name__)

MAX_REASON = 2000

STEPS = {
    Alert.Kind.CLOSE_FAILED: "period close",
    Alert.Kind.RATING_FAILED: "rating",
    Alert.Kind.FINALIZE_FAILED: "finalization",
}


@dataclass(frozen=True)
class RunFailure:
    """One subscription or invoice a run step could not process (picklable: the shards of a
    parallel run send theirs back to the parent)."""

    kind: str
    customer: str
    reason: str
    subscription_id: int | None = None
    invoice_id: int | None = None
    period_start: datetime | None = None

    def text(self) -> str:
        step = STEPS.get(self.kind, self.kind)
        if self.invoice_id is not None:
            what = f"invoice {self.invoice_id}"
        else:
            what = f"subscription {self.subscription_id}"
            if self.period_start is not None:
                what += f", period from {self.period_start.isoformat()}"
        return f"{step} of {what} (customer {self.customer}): {self.reason}"


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _check_connection(exc: BaseException) -> None:
    """A failure that took the database connection with it is not one subscription's: the
    rest cannot be processed either, so the run stops (and the next run retries all)."""
    if not connection.is_usable():
        raise exc


def run_failure_record(
    *,
    kind: str,
    exc: BaseException,
    subscription_id: int | None = None,
    invoice_id: int | None = None,
) -> RunFailure:
    """Log ``exc`` (with its traceback) for the subscription or invoice it stopped, and
    record or update the open alert of that subscription and period (or invoice). Call it
    from the ``except`` block, after the failed transaction rolled back."""
    _check_connection(exc)
    reason = _reason(exc)
    period_start = None
    if invoice_id is not None:
        invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
        customer, subscription_id = invoice.customer, invoice.subscription_id
        lookup = {"kind": kind, "invoice_id": invoice_id}
    else:
        sub = Subscription.objects.select_related("customer").get(pk=subscription_id)
        customer, period_start = sub.customer, sub.current_period_start
        lookup = {"kind": kind, "subscription_id": subscription_id, "period_start": period_start}
    failure = RunFailure(
        kind=kind,
        customer=customer.external_id,
        reason=reason,
        subscription_id=subscription_id,
        invoice_id=invoice_id,
        period_start=period_start,
    )
    logger.error(
        "%s failed; it is left as it was and the next run retries it",
        failure.text(),
        exc_info=exc,
    )
    _alert_upsert(lookup, customer, failure)
    return failure


def _alert_upsert(lookup: dict, customer: Customer, failure: RunFailure) -> None:
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                updated = Alert.objects.filter(resolved_at__isnull=True, **lookup).update(
                    attempts=F("attempts") + 1, last_failed_at=now, reason=failure.reason
                )
                if not updated:
                    Alert.objects.create(
                        customer=customer,
                        subscription_id=failure.subscription_id,
                        invoice_id=failure.invoice_id,
                        period_start=failure.period_start,
                        kind=failure.kind,
                        reason=failure.reason,
                        last_failed_at=now,
                    )
            return
        except IntegrityError:
            continue  # a concurrent run recorded it first: update that one


def run_failures_open(*, kind: str) -> set[int]:
    """The subscriptions (for finalization: the invoices) with an open alert of ``kind``."""
    column = "invoice_id" if kind == Alert.Kind.FINALIZE_FAILED else "subscription_id"
    return set(
        Alert.objects.filter(kind=kind, resolved_at__isnull=True).values_list(column, flat=True)
    )


def run_failures_resolve(*, kind: str, ids: Iterable[int]) -> int:
    """Resolve the open alerts of ``kind`` of these subscriptions (invoices), which a run has
    now processed; returns how many."""
    ids = list(ids)
    if not ids:
        return 0
    column = "invoice_id" if kind == Alert.Kind.FINALIZE_FAILED else "subscription_id"
    return Alert.objects.filter(
        kind=kind, resolved_at__isnull=True, **{f"{column}__in": ids}
    ).update(resolved_at=timezone.now())
