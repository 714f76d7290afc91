"""Every API error as RFC 9457 problem details:
``{"type", "title", "status", "detail", "code", "errors"}`` with
``Content-Type: application/problem+json``."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework import status as http
from rest_framework.response import Response

from core.errors import BillfoldError
from core.text import plain_decimals

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "https://billfold.dev/problems/"
CONTENT_TYPE = "application/problem+json"
_CORE_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "errors"})


class RequestTooLarge(drf.APIException):
    status_code = http.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


_DRF_CODES = {
    RequestTooLarge: ("too_large", "Request body too large"),
    drf.ParseError: ("malformed", "Malformed request"),
    drf.AuthenticationFailed: ("unauthenticated", "Authentication failed"),
    drf.NotAuthenticated: ("unauthenticated", "Authentication required"),
    drf.PermissionDenied: ("forbidden", "Forbidden"),
    drf.NotFound: ("not_found", "Not found"),
    drf.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    drf.NotAcceptable: ("not_acceptable", "Not acceptable"),
    drf.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    drf.Throttled: ("throttled", "Too many requests"),
    drf.ValidationError: ("invalid", "Invalid request"),
}


def problem(
    *,
    status: int,
    code: str,
    title: str,
    detail: str = "",
    errors: dict[str, list[str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
        "errors": errors or {},
    }
    # extension members (RFC 9457 §3.2) never replace the standard ones
    body.update({k: plain_decimals(v) for k, v in extra.items() if k not in _CORE_MEMBERS})
    return body


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF validation detail (nested dicts and lists) → {"field.sub": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # ListField / DictField children
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten_errors(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(i) for i in detail)
        else:
            for index, item in enumerate(detail):
                for k, v in flatten_errors(item, f"{prefix}[{index}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=body["status"], content_type=CONTENT_TYPE, headers=headers)


def set_rollback() -> None:
    """DRF's ``set_rollback`` (roll back ``ATOMIC_REQUESTS``), imported late: the parser and the
    authentication of this package are loaded while ``rest_framework.views`` is being
    imported, and this module is imported by them."""
    from rest_framework.views import set_rollback as drf_set_rollback

    drf_set_rollback()


def _unavailable(exc: Exception) -> Response:
    logger.warning("database unavailable: %s", exc)
    return problem_response(
        problem(
            status=503,
            code="unavailable",
            title="Service unavailable",
            detail="The database could not complete the request; nothing was written. Retry later.",
        ),
        headers={"Retry-After": "1"},
    )


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error a view raises as problem details. Returns None
    (→ a 500 through handler500) only for what is a bug."""
    if isinstance(exc, BillfoldError):
        set_rollback()
        return problem_response(
            problem(
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                errors=exc.errors,
                **{k: v for k, v in exc.extra.items() if k not in _CORE_MEMBERS},
            )
        )
    if isinstance(exc, OperationalError | InterfaceError):
        # connection lost or refused, statement timeout, deadlock, serialization failure:
        # transient, and the failed transaction wrote nothing
        set_rollback()
        return _unavailable(exc)
    if isinstance(exc, DataError):
        # a value PostgreSQL cannot store (too long, out of range) that validation missed:
        # still the client's input, so a 400, but logged as the validation gap it is
        set_rollback()
        logger.warning("input reached the database unvalidated: %s", exc)
        return problem_response(
            problem(
                status=400,
                code="invalid",
                title="Invalid request",
                detail="A value in the request is out of range or too long.",
            )
        )
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        if hasattr(exc, "error_dict"):
            errors = {
                ("non_field_errors" if k == "__all__" else k): list(v)
                for k, v in exc.message_dict.items()
            }
        else:
            errors = {"non_field_errors": list(exc.messages)}
        exc = drf.ValidationError(errors)
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = drf.ParseError(str(exc) or None)
    if isinstance(exc, drf.APIException):
        set_rollback()
        code, title = "error", "Request failed"
        for cls, pair in _DRF_CODES.items():
            if isinstance(exc, cls):
                code, title = pair
                break
        if isinstance(exc, drf.ValidationError):
            errors = flatten_errors(exc.detail)
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        else:
            errors = {}
            detail = str(exc.detail)
        headers = {}
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(math.ceil(exc.wait))
        return problem_response(
            problem(status=exc.status_code, code=code, title=title, detail=detail, errors=errors),
            headers=headers,
        )
    return None


# the problem an error answer of Django's own (not the API's views) stands for, by status
_STATUS_PROBLEMS = {
    400: ("malformed", "Malformed request", "The request could not be read."),
    403: ("forbidden", "Forbidden", "The request is not allowed."),
    405: ("method_not_allowed", "Method not allowed", "The route does not take this method."),
    413: ("too_large", "Request body too large", "The request body is too large."),
}


def _django_problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem(status=status, code=code, title=title, detail=detail),
        status=status,
        content_type=CONTENT_TYPE,
    )


def _status_problem(request: HttpRequest, status: int) -> JsonResponse:
    if status == 404:
        return _django_problem(404, "not_found", "Not found", f"No resource at {request.path}.")
    if status >= 500:
        return _django_problem(
            status, "internal_error", "Internal error", "An unexpected error occurred."
        )
    code, title, detail = _STATUS_PROBLEMS.get(status, ("error", "Request failed", ""))
    return _django_problem(status, code, title, detail or title)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class ApiProblemMiddleware:
    """The outermost middleware: every error answer under /api/ is problem details, whatever
    the settings. With ``DEBUG`` on, Django answers an unknown URL and an exception a view
    did not handle with its debug pages (the URL patterns, a traceback) instead of calling
    ``handler404``/``handler500``; such an answer is replaced by the problem its status
    stands for. The exception itself is logged by Django (``django.request``) as always."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and _is_api(request)
            and response.get("Content-Type") != CONTENT_TYPE
        ):
            replacement = _status_problem(request, response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: problem details under /api/, Django's page elsewhere."""
    if _is_api(request):
        return _status_problem(request, 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def api_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: problem details under /api/ (never an HTML trace)."""
    if _is_api(request):
        return _status_problem(request, 500)
    from django.views.defaults import server_error

    return server_error(request)
