"""Bearer API keys and scopes (docs/api.md Conventions, docs/quality.md 13)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from billing.api.auth import ApiPrincipal
from billing.models import ApiKey
from billing.services.api_keys import api_key_create, api_key_revoke
from tests.api.helpers import problem_of

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami"


def client_with_header(value: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client


def test_whoami_answers_with_the_calling_key(make_api_client):
    client = make_api_client(["events"])
    response = client.get(WHOAMI)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "name": "test",
        "prefix": client.api_key.prefix,
        "scopes": ["events"],
    }


def test_only_the_hash_of_a_key_is_stored(make_api_client):
    client = make_api_client(["read"])
    row = ApiKey.objects.get(pk=client.api_key.pk)
    assert row.key_hash == hashlib.sha256(client.raw_key.encode()).hexdigest()
    assert client.raw_key.startswith(f"bf_{row.prefix}_")
    stored = {f.attname: getattr(row, f.attname) for f in ApiKey._meta.concrete_fields}
    assert client.raw_key not in [str(v) for v in stored.values()]


def test_missing_key_is_401_with_a_challenge():
    response = APIClient().get(WHOAMI)
    body = problem_of(response, 401, "unauthenticated")
    assert body == {
        "type": "https://billfold.dev/problems/unauthenticated",
        "title": "Authentication required",
        "status": 401,
        "detail": "An API key is required (Authorization: Bearer <key>).",
        "code": "unauthenticated",
        "errors": {},
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer bf_0123456789ab_not-a-real-key", "Invalid or revoked API key."),
        ("Bearer not-even-the-format", "Invalid or revoked API key."),
        ("Basic dXNlcjpwYXNz", "Use the header 'Authorization: Bearer <key>'."),
        ("Bearer", "Use the header 'Authorization: Bearer <key>'."),
        ("Bearer two parts", "Use the header 'Authorization: Bearer <key>'."),
        ("Bearer bf_ключ", "Invalid API key."),
        ("Bearer bf_\u00e9\u00e9\u00e9", "Invalid API key."),
        ("Bearer bf_" + "a" * 100_000, "Invalid API key."),
        ("Bearer " + "\u2603" * 100_000, "Invalid API key."),
    ],
    ids=[
        "unknown",
        "garbage",
        "basic",
        "no-key",
        "three-parts",
        "cyrillic",
        "latin1",
        "100kB",
        "100kB-non-ascii",
    ],
)
def test_bad_authorization_header_is_401_never_500(header, detail):
    response = client_with_header(header).get(WHOAMI)
    body = problem_of(response, 401, "unauthenticated")
    assert body["title"] == "Authentication failed"
    assert body["detail"] == detail
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_header_of_bytes_outside_ascii_is_401():
    # what a WSGI server hands Django for raw UTF-8 bytes: latin-1 decoded text
    header = "Bearer bf_ключ".encode().decode("latin-1")
    response = client_with_header(header).get(WHOAMI)
    assert problem_of(response, 401, "unauthenticated")["detail"] == "Invalid API key."


def test_the_scheme_name_is_case_insensitive(make_api_client):
    client = make_api_client(["read"])
    response = client_with_header(f"bearer {client.raw_key}").get(WHOAMI)
    assert response.status_code == 200
    assert response.json()["prefix"] == client.api_key.prefix


def test_a_revoked_key_fails_at_once(make_api_client):
    client = make_api_client(["read"])
    assert client.get(WHOAMI).status_code == 200
    api_key_revoke(key=client.api_key)
    response = client.get(WHOAMI)
    assert problem_of(response, 401, "unauthenticated")["detail"] == "Invalid or revoked API key."


def test_a_key_with_the_hash_of_another_does_not_pass(make_api_client):
    client = make_api_client(["read"])
    tampered = client.raw_key[:-1] + ("A" if client.raw_key[-1] != "A" else "B")
    response = client_with_header(f"Bearer {tampered}").get(WHOAMI)
    problem_of(response, 401, "unauthenticated")


def test_last_used_at_is_written_at_most_once_a_minute(make_api_client):
    client = make_api_client(["read"])
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at is None
    client.get(WHOAMI)
    first = ApiKey.objects.get(pk=client.api_key.pk).last_used_at
    assert first is not None
    client.get(WHOAMI)
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at == first
    stale = timezone.now() - timedelta(minutes=5)
    ApiKey.objects.filter(pk=client.api_key.pk).update(last_used_at=stale)
    client.get(WHOAMI)
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at > stale + timedelta(minutes=4)


# --- scopes, through views of the test URL conf -----------------------------------------------

ECHO = "/api/v1/_tests/echo"
EVENTS = "/api/v1/_tests/events-scope"
VALID_ECHO = {"name": "ab", "prices": []}


@pytest.mark.urls("tests.api.urls_for_tests")
@pytest.mark.parametrize(
    ("scopes", "get_status", "post_status"),
    [
        (["read"], 200, 403),
        (["manage"], 403, 201),
        (["events"], 403, 403),
        (["events", "read", "manage"], 200, 201),
    ],
)
def test_read_needs_read_and_writes_need_manage(make_api_client, scopes, get_status, post_status):
    client = make_api_client(scopes)
    assert client.get(ECHO).status_code == get_status
    assert client.post(ECHO, VALID_ECHO, format="json").status_code == post_status


@pytest.mark.urls("tests.api.urls_for_tests")
def test_missing_scope_is_a_403_problem_naming_the_scope(make_api_client):
    client = make_api_client(["read"])
    response = client.post(ECHO, VALID_ECHO, format="json")
    body = problem_of(response, 403, "forbidden")
    assert body == {
        "type": "https://billfold.dev/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "This API key lacks the 'manage' scope.",
        "code": "forbidden",
        "errors": {},
    }
    assert "WWW-Authenticate" not in response


@pytest.mark.urls("tests.api.urls_for_tests")
@pytest.mark.parametrize(
    ("scopes", "get_status", "post_status"),
    [
        (["events"], 200, 201),
        (["read"], 200, 403),
        (["manage"], 403, 403),
    ],
)
def test_a_view_may_name_other_scopes(make_api_client, scopes, get_status, post_status):
    client = make_api_client(scopes)
    assert client.get(EVENTS).status_code == get_status
    assert client.post(EVENTS, {}, format="json").status_code == post_status


@pytest.mark.urls("tests.api.urls_for_tests")
def test_two_alternative_scopes_are_named_in_the_403(make_api_client):
    response = make_api_client(["manage"]).get(EVENTS)
    body = problem_of(response, 403, "forbidden")
    assert body["detail"] == "This API key lacks the 'events' or 'read' scope."


def test_an_unimplemented_method_is_405_whatever_the_scopes(make_api_client):
    response = make_api_client(["read"]).delete(WHOAMI)
    body = problem_of(response, 405, "method_not_allowed")
    assert body["detail"] == 'Method "DELETE" not allowed.'
    assert response["Allow"] == "GET, HEAD, OPTIONS"


def test_an_unimplemented_method_without_a_key_is_still_401():
    problem_of(APIClient().delete(WHOAMI), 401, "unauthenticated")


@pytest.mark.urls("tests.api.urls_for_tests")
def test_request_user_is_a_principal_for_the_key(make_api_client):
    client = make_api_client(["read"])
    response = client.get(ECHO)
    assert response.json() == {
        "method": "GET",
        "principal": f"API key test ({client.api_key.prefix})",
    }
    principal = ApiPrincipal(client.api_key)
    assert principal.is_authenticated is True
    assert principal.is_anonymous is False
    assert principal.pk == principal.id == client.api_key.pk
    assert principal == ApiPrincipal(ApiKey.objects.get(pk=client.api_key.pk))


@pytest.mark.urls("tests.api.urls_for_tests")
def test_throttling_counts_per_key_and_answers_429_problem(make_api_client):
    cache.clear()
    first, second = make_api_client(["read"]), make_api_client(["read"])
    assert first.get("/api/v1/_tests/throttled").json() == {"user_pk": first.api_key.pk}
    assert first.get("/api/v1/_tests/throttled").status_code == 200
    response = first.get("/api/v1/_tests/throttled")
    body = problem_of(response, 429, "throttled")
    assert body["title"] == "Too many requests"
    assert 1 <= int(response["Retry-After"]) <= 60
    # another key has its own budget
    assert second.get("/api/v1/_tests/throttled").status_code == 200


def test_api_key_create_rejects_bad_input():
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as missing:
        api_key_create(name="  ", scopes=["read"])
    assert missing.value.errors == {"name": ["This field is required."]}
    with pytest.raises(ValidationFailed) as long_name:
        api_key_create(name="x" * 201, scopes=["read"])
    assert long_name.value.errors == {
        "name": ["Ensure this field has no more than 200 characters."]
    }
    with pytest.raises(ValidationFailed) as unknown:
        api_key_create(name="ci", scopes=["read", "admin", "write"])
    assert unknown.value.errors == {"scopes": ["Unknown scope: admin.", "Unknown scope: write."]}
    with pytest.raises(ValidationFailed) as empty:
        api_key_create(name="ci", scopes=[" ", ""])
    assert empty.value.errors == {"scopes": ["At least one scope is required."]}
    assert ApiKey.objects.count() == 0


def test_api_key_create_normalises_scopes():
    key, raw = api_key_create(name=" ci ", scopes=["read", " manage", "read"])
    assert (key.name, key.scopes) == ("ci", ["manage", "read"])
    assert len(raw) == len("bf_") + 12 + 1 + 43


def test_revoking_twice_keeps_the_first_time():
    key, _ = api_key_create(name="ci", scopes=["read"])
    first = api_key_revoke(key=key).revoked_at
    assert first is not None
    assert api_key_revoke(key=ApiKey.objects.get(pk=key.pk)).revoked_at == first
