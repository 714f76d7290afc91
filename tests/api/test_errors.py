"""Every API error is RFC 9457 problem details (application/problem+json) with a stable code,
through the real URL conf (config.urls) or the test URL conf that includes it."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError, connection
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.test import APIClient

import wallets.errors as domain
from billing.api.errors import RequestTooLarge, problem, problem_exception_handler
from billing.models import ApiKey
from core import errors as core_errors
from tests.api.helpers import problem_of

pytestmark = pytest.mark.django_db

ECHO = "/api/v1/_tests/echo"


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


# --- through the project's URL conf ------------------------------------------------------------


def test_unknown_api_url_is_a_404_problem(api):
    response = api.get("/api/v1/no-such-thing")
    body = problem_of(response, 404, "not_found")
    assert body == {
        "type": "https://billfold.dev/problems/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "No resource at /api/v1/no-such-thing.",
        "code": "not_found",
        "errors": {},
    }


def test_unknown_api_url_is_a_404_problem_even_without_a_key():
    response = APIClient().post("/api/v2/whatever", {"a": 1}, format="json")
    assert problem_of(response, 404, "not_found")["detail"] == "No resource at /api/v2/whatever."


def test_unknown_url_outside_the_api_is_django_html_404():
    response = APIClient().get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"


def test_method_not_allowed_is_a_405_problem(api):
    response = api.put("/api/v1/whoami", {}, format="json")
    body = problem_of(response, 405, "method_not_allowed")
    assert body["detail"] == 'Method "PUT" not allowed.'
    assert body["title"] == "Method not allowed"
    assert response["Allow"] == "GET, HEAD, OPTIONS"


def test_unacceptable_accept_header_is_a_406_problem(api):
    response = api.get("/api/v1/whoami", HTTP_ACCEPT="text/html")
    body = problem_of(response, 406, "not_acceptable")
    assert body["title"] == "Not acceptable"


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_database_unavailable_is_a_503_problem(api, error):
    def refuse(execute, sql, params, many, context):
        raise error("connection to server at 127.0.0.1 failed: Connection refused")

    with connection.execute_wrapper(refuse):
        response = api.get("/api/v1/whoami")
    body = problem_of(response, 503, "unavailable")
    assert body == {
        "type": "https://billfold.dev/problems/unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The database could not complete the request; nothing was written. Retry later.",
        "code": "unavailable",
        "errors": {},
    }
    assert response["Retry-After"] == "1"
    # and the database answers again afterwards
    assert api.get("/api/v1/whoami").status_code == 200


# --- bodies, through views of the test URL conf -------------------------------------------------


@pytest.mark.urls("tests.api.urls_for_tests")
def test_validation_errors_map_every_field_to_its_messages(api):
    response = api.post(
        ECHO,
        {
            "name": "too long",
            "prices": [
                {"meter": "ok", "tiers": [{"up_to": None, "unit_price": "1"}]},
                {"meter": "x" * 11, "tiers": [{"up_to": "abc"}]},
            ],
            "tags": [1, "two"],
        },
        format="json",
    )
    body = problem_of(response, 400, "invalid")
    assert body["errors"] == {
        "name": ["Ensure this field has no more than 5 characters."],
        "prices[1].meter": ["Ensure this field has no more than 10 characters."],
        "prices[1].tiers[0].up_to": ["A valid number is required."],
        "prices[1].tiers[0].unit_price": ["This field is required."],
        "tags[1]": ["A valid integer is required."],
    }
    assert body["title"] == "Invalid request"
    assert body["detail"] == (
        "name: Ensure this field has no more than 5 characters.; "
        "prices[1].meter: Ensure this field has no more than 10 characters.; "
        "prices[1].tiers[0].up_to: A valid number is required.; "
        "prices[1].tiers[0].unit_price: This field is required.; "
        "tags[1]: A valid integer is required."
    )


@pytest.mark.urls("tests.api.urls_for_tests")
def test_a_body_that_is_not_an_object_is_a_non_field_error(api):
    response = api.post(ECHO, [1, 2], format="json")
    body = problem_of(response, 400, "invalid")
    assert body["errors"] == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }


@pytest.mark.urls("tests.api.urls_for_tests")
def test_valid_body_passes(api):
    response = api.post(
        ECHO,
        {"name": "ab", "prices": [{"meter": "m", "tiers": [{"up_to": None, "unit_price": "2"}]}]},
        format="json",
    )
    assert response.status_code == 201
    assert response.json() == {
        "name": "ab",
        "prices": [{"meter": "m", "tiers": [{"up_to": None, "unit_price": "2.000000"}]}],
    }


@pytest.mark.urls("tests.api.urls_for_tests")
@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "ab",',
        b"not json at all",
        b'{"name": NaN, "prices": []}',
        b'{"name": Infinity, "prices": []}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
    ids=["truncated", "text", "nan", "infinity", "not-utf8", "deep-nesting"],
)
def test_malformed_json_is_a_400_malformed_problem(api, raw):
    response = api.generic("POST", ECHO, raw, content_type="application/json")
    body = problem_of(response, 400, "malformed")
    assert body["title"] == "Malformed request"
    assert body["errors"] == {}
    assert len(body["detail"]) < 1000


@pytest.mark.urls("tests.api.urls_for_tests")
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
def test_non_json_body_is_a_415_problem(api, content_type):
    response = api.generic("POST", ECHO, b"name=ab", content_type=content_type)
    body = problem_of(response, 415, "unsupported_media_type")
    assert body["detail"] == f'Unsupported media type "{content_type}" in request.'


@pytest.mark.urls("tests.api.urls_for_tests")
def test_multipart_body_is_a_415_problem(api):
    response = api.post(ECHO, {"name": "ab"})  # the test client's default: multipart
    body = problem_of(response, 415, "unsupported_media_type")
    assert body["detail"].startswith('Unsupported media type "multipart/form-data; boundary=')


@pytest.mark.urls("tests.api.urls_for_tests")
def test_domain_error_keeps_its_code_status_and_extra_members(api):
    response = api.post("/api/v1/_tests/domain-error", {}, format="json")
    body = problem_of(response, 402, "insufficient_funds")
    assert body == {
        "type": "https://billfold.dev/problems/insufficient_funds",
        "title": "Insufficient funds",
        "status": 402,
        "detail": "The wallet cannot pay 1.5 USD.",
        "code": "insufficient_funds",
        "errors": {},
        "event": {"id": "evt_1", "status": "declined"},
    }


@pytest.mark.urls("tests.api.urls_for_tests")
def test_django_validation_error_is_a_400_invalid_problem(api):
    response = api.post("/api/v1/_tests/django-validation-error", {}, format="json")
    body = problem_of(response, 400, "invalid")
    assert body["errors"] == {"email": ["Enter a valid email address."]}


@pytest.mark.urls("tests.api.urls_for_tests")
def test_a_value_the_database_refuses_is_a_400_and_writes_nothing(api):
    response = api.post("/api/v1/_tests/rename-key", {"name": "x" * 100_000}, format="json")
    body = problem_of(response, 400, "invalid")
    assert body["detail"] == "A value in the request is out of range or too long."
    assert ApiKey.objects.get(pk=api.api_key.pk).name == "test"


@pytest.mark.urls("tests.api.urls_for_tests")
def test_an_unexpected_error_is_a_500_problem_without_a_trace(api):
    api.raise_request_exception = False
    response = api.get("/api/v1/_tests/crash")
    body = problem_of(response, 500, "internal_error")
    assert body == {
        "type": "https://billfold.dev/problems/internal_error",
        "title": "Internal error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "code": "internal_error",
        "errors": {},
    }
    assert b"RuntimeError" not in response.content


# --- the handler itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error_class",
    [core_errors.BillfoldError, *_all_subclasses(core_errors.BillfoldError)],
    ids=lambda c: c.__name__,
)
def test_every_domain_error_maps_to_its_status_and_code(error_class):
    if error_class.__init__ is not core_errors.BillfoldError.__init__:
        pytest.skip(f"{error_class.__name__} takes its own arguments")
    exc = error_class("what happened", errors={"field": ["why"]})
    response = problem_exception_handler(exc, {})
    assert response.status_code == error_class.status
    assert (
        response.content_type == "application/problem+json"
    )  # set on the Response, rendered later
    assert response.data == {
        "type": f"https://billfold.dev/problems/{error_class.code}",
        "title": error_class.title,
        "status": error_class.status,
        "detail": "what happened",
        "code": error_class.code,
        "errors": {"field": ["why"]},
    }


def test_domain_error_without_detail_uses_its_title():
    response = problem_exception_handler(domain.HoldNotPending(), {})
    assert response.status_code == 409
    assert response.data["detail"] == "The hold is not pending"
    assert response.data["code"] == "hold_not_pending"


def test_extra_members_never_replace_standard_ones():
    body = problem(status=402, code="x", title="X", detail="d", status_code=1, event={"a": 1})
    assert body["event"] == {"a": 1}
    exc = domain.InsufficientFunds("d", extra={"status": 200, "code": "ok", "event": {}})
    response = problem_exception_handler(exc, {})
    assert (response.data["status"], response.data["code"]) == (402, "insufficient_funds")
    assert response.data["event"] == {}


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Http404("nope"), 404, "not_found"),
        (drf.NotFound(), 404, "not_found"),
        (drf.ParseError(), 400, "malformed"),
        (drf.Throttled(wait=2.5), 429, "throttled"),
        (RequestTooLarge(), 413, "too_large"),
        (
            RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."),
            413,
            "too_large",
        ),
        (SuspiciousOperation("Too many fields"), 400, "malformed"),
        (DjangoValidationError("Bad."), 400, "invalid"),
        (DataError("value too long for type character varying(200)"), 400, "invalid"),
        (OperationalError("server closed the connection unexpectedly"), 503, "unavailable"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_framework_and_database_errors_map_to_problems(exc, status, code):
    response = problem_exception_handler(exc, {})
    assert response.status_code == status
    assert response.data["code"] == code
    assert response.data["status"] == status


def test_throttled_says_when_to_retry():
    response = problem_exception_handler(drf.Throttled(wait=2.5), {})
    assert response["Retry-After"] == "3"


def test_django_validation_error_without_fields_is_a_non_field_error():
    response = problem_exception_handler(DjangoValidationError(["A.", "B."]), {})
    assert response.data["errors"] == {"non_field_errors": ["A.", "B."]}
    response = problem_exception_handler(DjangoValidationError({"__all__": ["C."]}), {})
    assert response.data["errors"] == {"non_field_errors": ["C."]}


def test_a_bug_is_left_to_the_500_handler():
    assert problem_exception_handler(RuntimeError("bug"), {}) is None
    assert problem_exception_handler(KeyError("bug"), {}) is None


def test_problem_bodies_are_json_serialisable():
    response = problem_exception_handler(drf.ValidationError({"a": ["b"]}), {})
    assert json.loads(json.dumps(response.data)) == response.data


@pytest.mark.urls("tests.api.urls_for_tests")
def test_a_body_over_the_upload_limit_is_a_413_problem(api, settings):
    """DRF (≥ 3.16) reads a JSON body through ``request.body``, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE applies; its RequestDataTooBig becomes a 413 problem."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "ab", "prices": [], "pad": "x" * 1000}).encode()
    response = api.generic("POST", ECHO, body, content_type="application/json")
    body = problem_of(response, 413, "too_large")
    assert body["detail"] == "The request body is too large."
    # at the limit it is parsed as usual
    small = json.dumps({"name": "ab", "prices": []}).encode()
    assert api.generic("POST", ECHO, small, content_type="application/json").status_code == 201
