from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from billing.selectors.heartbeats import heartbeat_latest


@require_GET
def healthz(request):
    """200 when the database answers (no auth); 503 otherwise. Also reports when a Celery
    worker last ran the scheduled heartbeat."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        beat = heartbeat_latest()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse(
        {
            "status": "ok",
            "database": "ok",
            "worker_last_seen_at": beat.last_seen_at.isoformat() if beat else None,
        }
    )
