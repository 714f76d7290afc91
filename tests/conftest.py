from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from billing.services.api_keys import api_key_create

ALL_SCOPES = ["events", "read", "manage"]


@pytest.fixture
def make_api_client(db):
    """make_api_client(scopes=[...]) → an APIClient sending a fresh key with those scopes."""

    def make(scopes: list[str] | None = None) -> APIClient:
        key, raw = api_key_create(name="test", scopes=scopes or ALL_SCOPES)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        client.api_key = key
        client.raw_key = raw
        return client

    return make


@pytest.fixture
def api(make_api_client) -> APIClient:
    """An APIClient whose key has every scope."""
    return make_api_client()
