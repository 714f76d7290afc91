from __future__ import annotations

import socket

from django.db.models import F
from django.utils import timezone

from billing.models import Heartbeat


def heartbeat_record(*, name: str = "worker") -> Heartbeat:
    """Record that a worker ran now. One row per name, updated in place (an upsert)."""
    now = timezone.now()
    host = socket.gethostname()
    updated = Heartbeat.objects.filter(name=name).update(
        last_seen_at=now, hostname=host, runs=F("runs") + 1
    )
    if not updated:
        Heartbeat.objects.get_or_create(
            name=name, defaults={"last_seen_at": now, "hostname": host, "runs": 1}
        )
    return Heartbeat.objects.get(name=name)
