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
    from billing.services.subscriptions import subscription_trial_end_due

    return len(subscription_trial_end_due())
