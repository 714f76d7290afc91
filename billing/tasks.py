"""Celery tasks of the billing app: thin wrappers over services. Tasks whose service is
idempotent ack late, so a worker killed mid-task has it redelivered."""

from celery import shared_task

from billing.services.heartbeats import heartbeat_record


@shared_task(name="billing.heartbeat", acks_late=True)
def heartbeat() -> str:
    beat = heartbeat_record(name="worker")
    return beat.last_seen_at.isoformat()


@shared_task(name="billing.end_trials", acks_late=True)
def end_trials() -> int:
    """Move subscriptions whose trial is over to active. Idempotent."""
    from billing.subscriptions import subscription_trial_end_due

    return len(subscription_trial_end_due())


@shared_task(name="billing.close_periods", acks_late=True)
def close_periods(shard: list[int] | None = None) -> int:
    """Close every ended period: invoices, allowance refresh, scheduled changes. ``shard``
    ``[k, n]`` limits it to the subscriptions whose id % n == k (one beat entry per shard
    spreads a large run over n workers). A subscription whose close fails is logged,
    recorded as an alert and left for the next run; the others close."""
    from billing.periodic import subscriptions_close_due

    return subscriptions_close_due(shard=tuple(shard) if shard else None)


@shared_task(name="billing.rate", acks_late=True)
def rate(shard: list[int] | None = None) -> int:
    """Rate periodically rated prices of open periods into their counters (idempotent);
    ``shard`` as for ``close_periods``."""
    from billing.periodic import rating_run

    return rating_run(shard=tuple(shard) if shard else None).counters


@shared_task(name="billing.finalize_invoices", acks_late=True)
def finalize_invoices() -> int:
    """Finalize drafts whose grace period has passed (one that fails is recorded as an
    alert and stays a draft; the others are finalized)."""
    from django.utils import timezone

    from billing.periodic import finalize_due

    return finalize_due(now=timezone.now())
