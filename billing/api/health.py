"""``GET /healthz`` for load balancers and monitors: no authentication, never cached."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from billing.api.errors import CONTENT_TYPE, problem
from billing.selectors.heartbeats import heartbeat_latest

logger = logging.getLogger(__name__)

ALLOWED = ("GET", "HEAD")


@csrf_exempt  # so that a POST gets the 405 below rather than a CSRF page
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, with when a Celery worker last ran the scheduled
    heartbeat (null if never); 503 problem details (code ``unavailable``) when it does not."""
    if request.method not in ALLOWED:
        return JsonResponse(
            problem(
                status=405,
                code="method_not_allowed",
                title="Method not allowed",
                detail=f'Method "{request.method}" not allowed.',
            ),
            status=405,
            content_type=CONTENT_TYPE,
            headers={"Allow": ", ".join(ALLOWED)},
        )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        beat = heartbeat_latest()
    except DatabaseError as exc:
        logger.warning("healthz: database unavailable: %s", exc)
        return JsonResponse(
            problem(
                status=503,
                code="unavailable",
                title="Service unavailable",
                detail="The database does not answer.",
                database="unavailable",
            ),
            status=503,
            content_type=CONTENT_TYPE,
            headers={"Retry-After": "1"},
        )
    return JsonResponse(
        {
            "status": "ok",
            "database": "ok",
            "worker_last_seen_at": beat.last_seen_at.isoformat() if beat else None,
        }
    )
