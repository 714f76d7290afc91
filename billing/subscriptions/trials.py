"""The end of a trial: a trialing subscription becomes active once its trial is over."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Subscription


def subscription_trial_end_due(*, now: datetime | None = None, batch: int = 1000) -> list[int]:
    """Move trialing subscriptions whose trial has ended (``trial_ends_at <= now``) to
    ``active``; returns their ids, sorted. Batches of rows locked with ``SKIP LOCKED`` and a
    conditional ``UPDATE … WHERE status = 'trialing'``: idempotent, and safe to run
    concurrently (a row another run holds is left to it)."""
    now = now or timezone.now()
    ended: list[int] = []
    while True:
        with transaction.atomic():
            ids = list(
                Subscription.objects.select_for_update(skip_locked=True)
                .filter(status=Subscription.Status.TRIALING, trial_ends_at__lte=now)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            Subscription.objects.filter(pk__in=ids, status=Subscription.Status.TRIALING).update(
                status=Subscription.Status.ACTIVE
            )
        ended.extend(ids)
        if len(ids) < batch:
            return sorted(ended)
