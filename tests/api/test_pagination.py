"""Cursor pagination: ?limit= (1..500, default 100), ?cursor=, {"results", "next"}."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from billing.models import ApiKey
from tests.api.helpers import problem_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls_for_tests")]

KEYS = "/api/v1/_tests/keys"


def make_keys(count: int) -> list[int]:
    rows = ApiKey.objects.bulk_create(
        ApiKey(name=f"k{i}", prefix=f"p{i:010d}", key_hash=f"{i:064x}", scopes=["read"])
        for i in range(count)
    )
    return [row.pk for row in rows]


def walk(client, url: str) -> tuple[list[list[int]], list[str]]:
    pages, links = [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == {"results", "next"}
        pages.append([row["id"] for row in body["results"]])
        url = body["next"]
        if url:
            links.append(url)
    return pages, links


def test_the_cursor_walks_every_row_exactly_once_newest_first(api):
    ids = [api.api_key.pk, *make_keys(7)]
    pages, links = walk(api, f"{KEYS}?limit=3")
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [pk for page in pages for pk in page] == sorted(ids, reverse=True)
    assert all(link.startswith("http://testserver/api/v1/_tests/keys?") for link in links)
    assert all(parse_qs(urlsplit(link).query)["limit"] == ["3"] for link in links)


def test_rows_added_while_walking_do_not_repeat_or_shift_rows(api):
    ids = [api.api_key.pk, *make_keys(5)]
    first = api.get(f"{KEYS}?limit=4").json()
    assert [r["id"] for r in first["results"]] == sorted(ids, reverse=True)[:4]
    added = ApiKey.objects.create(name="new", prefix="pnew", key_hash="f" * 64, scopes=["read"])
    second = api.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == sorted(ids, reverse=True)[4:]
    assert added.pk not in [r["id"] for r in second["results"]]
    assert second["next"] is None


def test_default_page_is_100_and_500_is_allowed(api):
    make_keys(120)
    default = api.get(KEYS).json()
    assert len(default["results"]) == 100
    assert default["next"] is not None
    assert "limit" not in parse_qs(urlsplit(default["next"]).query)
    everything = api.get(f"{KEYS}?limit=500").json()
    assert len(everything["results"]) == 121
    assert everything["next"] is None


@pytest.mark.parametrize(
    "limit", ["0", "-1", "501", "1000000", "abc", "", "1.5", "1e2", " 5", "+5", "١٢"]
)
def test_bad_limit_is_a_400_invalid_problem(api, limit):
    response = api.get(KEYS, {"limit": limit})
    body = problem_of(response, 400, "invalid")
    assert body["errors"] == {"limit": ["Must be an integer from 1 to 500."]}


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "é",
        "cD1hYmM=",  # base64 of "p=abc": decodes, but the position is not an id
        "bz0tMQ==",  # "o=-1"
    ],
)
def test_bad_cursor_is_a_400_invalid_problem(api, cursor):
    make_keys(3)
    response = api.get(KEYS, {"cursor": cursor})
    body = problem_of(response, 400, "invalid")
    assert body["errors"] == {
        "cursor": ["Invalid cursor: pass the `next` URL of the previous page unchanged."]
    }
