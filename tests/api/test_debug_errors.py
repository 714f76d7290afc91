"""Every answer under /api/ is problem details in every settings module: with ``DEBUG`` on,
Django's debug pages (the URL patterns, a traceback) never reach an API client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.api.helpers import problem_of

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@override_settings(DEBUG=True)
@pytest.mark.parametrize(
    "url", ["/api/v1/no-such-thing", "/api/v1/events/", "/api/v1/customers/", "/api/", "/api/v2/x"]
)
def test_an_unknown_api_url_with_debug_on_is_a_404_problem(api, url):
    body = problem_of(api.get(url), 404, "not_found")
    assert body["detail"] == f"No resource at {url}."


@override_settings(DEBUG=True)
def test_an_unknown_api_url_without_a_key_with_debug_on_is_a_404_problem():
    response = APIClient().post("/api/v1/nope/", {"a": 1}, format="json")
    assert b"urlpatterns" not in response.content
    problem_of(response, 404, "not_found")


@override_settings(DEBUG=True)
def test_a_method_a_route_lacks_with_debug_on_is_a_405_problem(api):
    response = api.delete("/api/v1/events")
    problem_of(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


@override_settings(DEBUG=True)
@pytest.mark.urls("tests.api.urls_for_tests")
def test_an_unexpected_error_with_debug_on_is_a_500_problem_without_a_trace(api, caplog):
    api.raise_request_exception = False
    response = api.get("/api/v1/_tests/crash")
    body = problem_of(response, 500, "internal_error")
    assert body["detail"] == "An unexpected error occurred."
    assert b"RuntimeError" not in response.content
    assert b"Traceback" not in response.content
    # logged server-side, with the exception
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


@override_settings(DEBUG=True)
def test_outside_the_api_django_pages_stay(api):
    response = APIClient().get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_dev_settings_answer_problems_under_the_api():
    """``make run``'s settings (DEBUG on); URL resolution needs no database."""
    code = """
import django, json
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
from django.conf import settings
client = Client(raise_request_exception=False)
out = {"debug": settings.DEBUG}
for url in ("/api/v1/events/", "/api/v1/no-such-thing"):
    r = client.get(url)
    out[url] = [r.status_code, r["Content-Type"], json.loads(r.content)["code"]]
print(json.dumps(out))
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.dev", "DJANGO_DEBUG": "true"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {
        "debug": True,
        "/api/v1/events/": [404, "application/problem+json", "not_found"],
        "/api/v1/no-such-thing": [404, "application/problem+json", "not_found"],
    }
