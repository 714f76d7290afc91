"""Celery tasks of the billing app: thin wrappers over services. Tasks whose service is
idempotent ack late, so a worker killed mid-task has it redelivered."""

from celery import shared_task

from billing.services.heartbeats import heartbeat_record


@shared_task(name="billing.heartbeat", acks_late=True)
def heartbeat() -> str:
    beat = heartbeat_record(name="worker")
    return beat.last_seen_at.isoformat()
