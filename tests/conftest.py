from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from tests.factories.billing import ALL_SCOPES, ApiKeyFactory


def pytest_collection_modifyitems(config, items):
    """Tests marked ``services`` (the long Schemathesis run) need a PostgreSQL server named
    by DATABASE_URL: on the embedded one (``make test`` without it) they are skipped."""
    if os.environ.get("DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="needs DATABASE_URL (a PostgreSQL server), as .ci/run sets")
    for item in items:
        if item.get_closest_marker("services") is not None:
            item.add_marker(skip)


@pytest.fixture
def make_api_client(db):
    """make_api_client(scopes=[...]) → an APIClient sending a fresh key with those scopes."""

    def make(scopes: list[str] | None = None) -> APIClient:
        key = ApiKeyFactory(name="test", scopes=scopes or list(ALL_SCOPES))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
        client.api_key = key
        client.raw_key = key.raw
        return client

    return make


@pytest.fixture
def api(make_api_client) -> APIClient:
    """An APIClient whose key has every scope."""
    return make_api_client()
