"""GET /healthz: no authentication; 200 when the database answers, 503 when it does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connection
from django.test import Client

from billing.models import Heartbeat
from tests.api.helpers import problem_of

pytestmark = pytest.mark.django_db


def test_healthz_ok_without_a_worker_heartbeat():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {"status": "ok", "database": "ok", "worker_last_seen_at": None}


def test_healthz_reports_the_worker_heartbeat():
    seen = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
    Heartbeat.objects.create(name="worker", last_seen_at=seen, runs=3)
    Heartbeat.objects.create(name="other", last_seen_at=datetime(2026, 2, 1, tzinfo=UTC))
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "worker_last_seen_at": "2026-01-05T10:00:00+00:00",
    }


def test_healthz_ignores_a_bad_authorization_header():
    response = Client().get("/healthz", HTTP_AUTHORIZATION="Bearer nonsense")
    assert response.status_code == 200


def test_healthz_head():
    response = Client().head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


def test_healthz_is_503_problem_when_the_database_fails():
    def refuse(execute, sql, params, many, context):
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(refuse):
        response = Client().get("/healthz")
    body = problem_of(response, 503, "unavailable")
    assert body == {
        "type": "https://billfold.dev/problems/unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The database does not answer.",
        "code": "unavailable",
        "errors": {},
        "database": "unavailable",
    }
    assert response["Retry-After"] == "1"


def test_healthz_rejects_other_methods_with_405_problem():
    response = Client(enforce_csrf_checks=True).post("/healthz")
    body = problem_of(response, 405, "method_not_allowed")
    assert body["detail"] == 'Method "POST" not allowed.'
    assert response["Allow"] == "GET, HEAD"
