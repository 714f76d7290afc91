"""Billfold's default beat schedule. It is written into django-celery-beat's tables after
``migrate`` only where an entry is missing, so what staff change in the admin (interval,
enabled) is never overwritten. Later issues add their jobs here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    task: str
    every_seconds: int
    description: str


DEFAULT_SCHEDULE: tuple[ScheduledJob, ...] = (
    ScheduledJob(
        name="Worker heartbeat",
        task="billing.heartbeat",
        every_seconds=60,
        description="Records that beat schedules and a worker runs (shown by /healthz).",
    ),
    ScheduledJob(
        name="Expire holds",
        task="wallets.expire_holds",
        every_seconds=30,
        description="Releases pending holds past their expiry.",
    ),
    ScheduledJob(
        name="Expire grants",
        task="wallets.expire_grants",
        every_seconds=60,
        description="Moves what remains of grants past their expiry to the expiry account.",
    ),
    ScheduledJob(
        name="Close ended periods",
        task="billing.close_periods",
        every_seconds=60,
        description="Invoices each ended period, refreshes allowances, applies scheduled "
        "plan changes and cancellations.",
    ),
    ScheduledJob(
        name="Rate periodic prices",
        task="billing.rate",
        every_seconds=300,
        description="Recomputes volume, max, unique_count and latest prices of open periods.",
    ),
    ScheduledJob(
        name="Finalize invoices",
        task="billing.finalize_invoices",
        every_seconds=300,
        description="Finalizes draft invoices whose grace period has passed.",
    ),
    ScheduledJob(
        name="End trials",
        task="billing.end_trials",
        every_seconds=300,
        description="Moves subscriptions whose trial is over to active.",
    ),
    ScheduledJob(
        name="Reconcile the ledger",
        task="wallets.reconcile",
        every_seconds=3600,
        description="Checks ledger invariants 1-4 and logs any drift as an error.",
    ),
)


def schedule_install_defaults(apps) -> int:
    """Create the missing default entries. Returns how many were created."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    created = 0
    for job in DEFAULT_SCHEDULE:
        if PeriodicTask.objects.filter(name=job.name).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=job.every_seconds, period="seconds"
        )
        PeriodicTask.objects.create(
            name=job.name, task=job.task, interval=interval, description=job.description
        )
        created += 1
    if created:
        PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
        # tell a running beat to reload its schedule
        from django.utils import timezone

        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
    return created
