"""Every API error as RFC 9457 problem details:
``{"type", "title", "status", "detail", "code", "errors"}`` with
``Content-Type: application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from wallets.errors import BillfoldError

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "https://billfold.dev/problems/"
CONTENT_TYPE = "application/problem+json"

_DRF_CODES = {
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
    body.update(extra)
    return body


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF validation detail (nested dicts and lists) → {"field.sub": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                name = "non_field_errors"
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(i) for i in detail)
        else:
            for index, item in enumerate(detail):
                for k, v in _flatten(item, f"{prefix}[{index}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=body["status"], content_type=CONTENT_TYPE, headers=headers)


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, BillfoldError):
        set_rollback()
        return problem_response(
            problem(
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                errors=exc.errors,
                **exc.extra,
            )
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    ):
        set_rollback()
        logger.warning("database unavailable: %s", exc)
        return problem_response(
            problem(
                status=503,
                code="unavailable",
                title="Service unavailable",
                detail="The database is not reachable; nothing was written. Retry later.",
            ),
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, drf.APIException):
        set_rollback()
        code, title = "error", "Request failed"
        for cls, pair in _DRF_CODES.items():
            if isinstance(exc, cls):
                code, title = pair
                break
        if isinstance(exc, drf.ValidationError):
            errors = _flatten(exc.detail)
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        else:
            errors = {}
            detail = str(exc.detail)
        headers = {}
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return problem_response(
            problem(status=exc.status_code, code=code, title=title, detail=detail, errors=errors),
            headers=headers,
        )
    return None


def _django_problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem(status=status, code=code, title=title, detail=detail),
        status=status,
        content_type=CONTENT_TYPE,
    )


def api_not_found(request, exception=None):
    """handler404: problem details under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return _django_problem(404, "not_found", "Not found", f"No resource at {request.path}.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def api_server_error(request):
    """handler500: problem details under /api/ (never an HTML trace)."""
    if request.path.startswith("/api/"):
        return _django_problem(
            500, "internal_error", "Internal error", "An unexpected error occurred."
        )
    from django.views.defaults import server_error

    return server_error(request)
