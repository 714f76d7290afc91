from __future__ import annotations

from billing.models import Heartbeat


def heartbeat_latest(name: str = "worker") -> Heartbeat | None:
    return Heartbeat.objects.filter(name=name).first()
