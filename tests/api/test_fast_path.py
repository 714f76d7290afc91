"""The usage fast path (billing.api.fastpath): the plain event, hold and capture requests are
answered without Django's request cycle, with the answers the full stack gives; everything
else is handed to Django unchanged."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
import time_machine
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection

from billing.api import fastpath
from billing.api.fastpath import UsageFastPath
from billing.models import UsageEvent
from billing.services.api_keys import api_key_revoke
from tests.billing.scenario import available, grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies
from wallets.models import LedgerTransaction

D = Decimal
pytestmark = pytest.mark.django_db


class Django:
    """The full stack, counting the requests it is handed."""

    def __init__(self) -> None:
        self.app = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.app(environ, start_response)


def call(
    app, path: str, body, key: str | None, *, signals_on: bool = False, **extra
) -> tuple[int, dict, bytes]:
    """One WSGI request. ``signals_on``: the request signals manage the connection as under a
    real server (only outside a test transaction, which they would end)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": extra.pop("method", "POST"),
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": extra.pop("content_type", "application/json"),
        **extra,
    }
    if key is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    # as Django's test client does: the request signals must not close the test's connection
    if not signals_on:
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        content = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], content


@pytest.fixture
def apps():
    django = Django()
    return UsageFastPath(django), django


@pytest.fixture
def tokens(api):
    """acme on a per-token plan (0.01 USD a token) with 10.00 USD; bob with nothing."""
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        setup_meter(api, "llm_tokens", "tokens")
        setup_plan(api, "pro", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.01"}])
        setup_customer(api, plan="pro")
        setup_customer(api, external_id="bob", plan="pro")
        grant(api, "acme", "USD", "10.00", id="g1")
    return api.raw_key


def event(event_id: str, customer: str = "acme", quantity: str = "100") -> dict:
    return {"id": event_id, "customer": customer, "meter": "llm_tokens", "quantity": quantity}


def without_length(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k != "Content-Length"}


def test_an_event_is_answered_as_the_full_stack_answers_it(apps, tokens, api):
    fast, django = apps
    status, headers, body = call(fast, "/api/v1/events", event("e1"), tokens)
    assert status == 201, body
    assert django.calls == 0  # answered by the fast path
    assert json.loads(body)["charge"]["amount"] == "1.000000000000"
    assert available(api, "acme", "USD") == D("9")

    # the full stack's answer to another event, and its replay of this one
    d_status, d_headers, _ = call(django, "/api/v1/events", event("e2"), tokens)
    assert d_status == 201
    assert without_length(headers) == without_length(d_headers)
    r_status, r_headers, r_body = call(django, "/api/v1/events", event("e1"), tokens)
    assert (r_status, json.loads(r_body)) == (201, json.loads(body))  # the stored answer
    assert r_headers["Idempotent-Replayed"] == "true"

    # and its own replay is the full stack's
    f_status, f_headers, f_body = call(fast, "/api/v1/events", event("e1"), tokens)
    assert (f_status, f_body, without_length(f_headers)) == (
        r_status,
        r_body,
        without_length(r_headers),
    )
    assert django.calls == 2
    assert UsageEvent.objects.filter(event_id="e1").count() == 1
    assert available(api, "acme", "USD") == D("8")  # e1 and e2, each once


def test_a_declined_event_is_answered_and_recorded_as_by_the_full_stack(apps, tokens):
    fast, django = apps
    status, headers, body = call(fast, "/api/v1/events", event("d1", "bob"), tokens)
    assert status == 402 and django.calls == 0
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["code"] == "insufficient_funds"
    _, d_headers, d_body = call(django, "/api/v1/events", event("d2", "bob"), tokens)
    assert without_length(d_headers) == without_length(headers)
    first, other = json.loads(body), json.loads(d_body)
    assert {k: v for k, v in first.items() if k != "event"} == {
        k: v for k, v in other.items() if k != "event"
    }
    same_but_id_and_time = {**other["event"], "id": "d1", "timestamp": first["event"]["timestamp"]}
    assert first["event"] == same_but_id_and_time
    # a replay is answered alike by both
    replays = [call(app, "/api/v1/events", event("d1", "bob"), tokens) for app in (django, fast)]
    assert replays[0] == replays[1] and replays[0][0] == 402
    assert django.calls == 2
    assert UsageEvent.objects.get(event_id="d1").status == "declined"


@pytest.mark.parametrize(
    "case",
    [
        "no key",
        "wrong scope",
        "unknown key",
        "revoked key",
        "malformed",
        "unknown customer",
        "bad quantity",
        "not json",
        "foreign host",
    ],
)
def test_what_the_fast_path_does_not_answer_goes_to_django_unchanged(
    case, apps, tokens, make_api_client
):
    fast, django = apps
    key, body, extra = tokens, event("x1"), {}
    if case == "no key":
        key = None
    elif case == "wrong scope":
        key = make_api_client(["read"]).raw_key
    elif case == "unknown key":
        key = tokens[:-4] + "abcd"
    elif case == "revoked key":
        client = make_api_client(["events"])
        api_key_revoke(key=client.api_key)
        key = client.raw_key
    elif case == "malformed":
        body = b'{"id": "x1", '
    elif case == "unknown customer":
        body = event("x1", "nobody")
    elif case == "bad quantity":
        body = event("x1", quantity="-3")
    elif case == "not json":
        extra["content_type"] = "text/plain"
    else:
        extra["HTTP_HOST"] = "evil.example"
    expected = call(django, "/api/v1/events", body, key, **extra)
    assert expected[0] in (400, 401, 403, 415, 422), expected
    django.calls = 0
    assert call(fast, "/api/v1/events", body, key, **extra) == expected
    assert django.calls == 1
    assert not UsageEvent.objects.filter(event_id="x1").exists()


@pytest.mark.parametrize("case", ["wrong scope", "revoked key"])
def test_a_replay_is_never_answered_to_a_key_that_may_not_send_events(
    case, apps, tokens, make_api_client
):
    """The fast path checks an event's key in the query that also finds its replay: a key
    refused there gets Django's 401 or 403, not the stored answer."""
    fast, django = apps
    assert call(fast, "/api/v1/events", event("r1"), tokens)[0] == 201
    client = make_api_client(["read"] if case == "wrong scope" else ["events"])
    if case == "revoked key":
        api_key_revoke(key=client.api_key)
    django.calls = 0
    status, _, body = call(fast, "/api/v1/events", event("r1"), client.raw_key)
    assert (status, django.calls) == ((403 if case == "wrong scope" else 401), 1), body


@pytest.mark.parametrize("route", ["holds", "capture"])
def test_a_hold_or_capture_is_never_answered_to_a_revoked_key(route, apps, tokens, make_api_client):
    fast, django = apps
    hold = {**event("hk", quantity="300"), "expires_in": 600}
    assert call(fast, "/api/v1/holds", hold, tokens)[0] == 201
    path, body = "/api/v1/holds", hold
    if route == "capture":
        assert call(fast, "/api/v1/holds/hk/capture", {"quantity": "200"}, tokens)[0] == 200
        path, body = "/api/v1/holds/hk/capture", {"quantity": "200"}
    client = make_api_client(["events"])
    api_key_revoke(key=client.api_key)
    django.calls = 0
    status, _, answer = call(fast, path, body, client.raw_key)
    assert (status, django.calls) == (401, 1), answer


def test_an_event_with_a_timestamp_goes_through_the_serializer(apps, tokens, api):
    fast, django = apps
    body = {**event("t1"), "timestamp": "2026-01-05T10:00:00Z"}
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        status, _, content = call(fast, "/api/v1/events", body, tokens)
    assert status == 201, content
    assert django.calls == 1
    assert available(api, "acme", "USD") == D("9")


def test_a_failure_inside_the_fast_path_is_retried_by_django_and_charged_once(
    apps, tokens, api, monkeypatch
):
    fast, django = apps
    real = fastpath.event_charge

    def fails_after_charging(*, data, **checks):
        real(data=data, **checks)  # written, then the request fails (say, the connection dropped)
        raise RuntimeError("lost")

    monkeypatch.setattr(fastpath, "event_charge", fails_after_charging)
    status, headers, _ = call(fast, "/api/v1/events", event("f1"), tokens)
    assert status == 201 and django.calls == 1
    assert headers["Idempotent-Replayed"] == "true"  # Django found it done
    assert UsageEvent.objects.filter(event_id="f1").count() == 1
    assert available(api, "acme", "USD") == D("9")


def test_hold_and_capture_through_the_fast_path(apps, tokens, api):
    fast, django = apps
    hold = {**event("h1", quantity="300"), "expires_in": 600}
    status, headers, body = call(fast, "/api/v1/holds", hold, tokens)
    assert status == 201 and django.calls == 0, body
    assert json.loads(body)["held"] == [{"asset": "USD", "amount": "3.000000000000"}]
    assert available(api, "acme", "USD") == D("7")
    # the full stack's headers on the same route
    _, d_headers, _ = call(django, "/api/v1/holds", {**hold, "id": "h2"}, tokens)
    assert without_length(d_headers) == without_length(headers)

    status, headers, body = call(fast, "/api/v1/holds/h1/capture", {"quantity": "120"}, tokens)
    assert status == 200 and django.calls == 1, body
    assert json.loads(body)["event"]["charge"]["amount"] == "1.200000000000"
    again = call(django, "/api/v1/holds/h1/capture", {"quantity": "120"}, tokens)
    assert again[0] == 200 and json.loads(again[2]) == json.loads(body)
    _, d_headers, _ = call(django, "/api/v1/holds/h2/capture", {"quantity": "1"}, tokens)
    assert without_length(d_headers) == without_length(headers)
    assert available(api, "acme", "USD") == D("10") - D("1.2") - D("0.01")
    assert LedgerTransaction.objects.filter(kind="capture").count() == 2


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/holds", {**event("h4"), "expires_in": 0}, 400),  # out of range
        ("/api/v1/holds/nope/capture", {"quantity": "1"}, 404),  # unknown hold
        ("/api/v1/holds/nope/capture", {"quantity": "-1"}, 400),  # bad quantity
    ],
)
def test_hold_errors_are_answered_by_django(path, body, status, apps, tokens):
    fast, django = apps
    expected = call(django, path, body, tokens)
    assert expected[0] == status
    assert call(fast, path, body, tokens) == expected
    assert django.calls == 2


def test_a_hold_with_expires_in_as_text_goes_through_the_serializer(apps, tokens, api):
    fast, django = apps
    status, _, body = call(fast, "/api/v1/holds", {**event("h3"), "expires_in": "600"}, tokens)
    assert status == 201 and django.calls == 1, body
    assert available(api, "acme", "USD") == D("9")


@pytest.mark.django_db(transaction=True)
def test_a_dead_connection_costs_the_client_nothing(api, caplog):
    """The fast path skips the health check; when the kept connection has died, its first
    query fails and Django answers the request on a new connection. That is expected now
    and then: a warning, not an error with a traceback."""
    ensure_currencies()  # a transaction=True test starts from (and leaves) empty tables
    key = tokens.__wrapped__(api)
    fast, django = apps.__wrapped__()
    connection.ensure_connection()
    connection.close_at = None  # kept open between requests, as with CONN_MAX_AGE in prod
    connection.connection.close()  # the server side went away; Django does not know yet
    status, _, body = call(fast, "/api/v1/events", event("k1"), key, signals_on=True)
    assert status == 201, body
    assert django.calls == 1  # the fast path failed and handed the request on
    assert UsageEvent.objects.filter(event_id="k1").count() == 1
    fast_path_logs = [r for r in caplog.records if r.name == "billing.api.fastpath"]
    assert [r.levelname for r in fast_path_logs] == ["WARNING"]
    assert fast_path_logs[0].exc_info is None
