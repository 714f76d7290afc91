"""Every method on every API route answers per HTTP — 200 with ``Allow``, a 4xx such as 404
or 405 — and never a 5xx; ``OPTIONS`` answers 200 with the route's methods."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, reverse

from billing.api import urls as api_urls

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
SAMPLES = {"month": "2026-01"}


def api_routes() -> list[str]:
    """Each URL pattern of the API with sample arguments."""
    routes = []
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: SAMPLES.get(name, "x1") for name in pattern.pattern.converters}
        routes.append(reverse(pattern.name, kwargs=kwargs))
    return routes


def test_the_walk_covers_every_route():
    routes = api_routes()
    assert len(routes) == len(api_urls.urlpatterns) > 30
    assert all(route.startswith("/api/v1/") for route in routes)


@pytest.mark.parametrize("url", api_routes())
def test_no_method_gives_a_server_error(api, url):
    api.raise_request_exception = False
    failures = []
    for method in METHODS:
        response = api.generic(method, url, b"{}", content_type="application/json")
        if response.status_code >= 500:
            failures.append(f"{method} {response.status_code}")
    assert failures == []


@pytest.mark.parametrize("url", api_routes())
def test_options_lists_the_allowed_methods(api, url):
    response = api.options(url)
    assert response.status_code == 200, response.content[:300]
    allowed = {m.strip() for m in response["Allow"].split(",")}
    assert "OPTIONS" in allowed
    for method in METHODS:
        if method not in allowed:
            answer = api.generic(method, url, b"{}", content_type="application/json")
            assert answer.status_code == 405, (method, answer.status_code)
