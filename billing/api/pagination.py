"""Cursor pagination as docs/api.md says: ``?limit=`` (1–500, default 100) and ``?cursor=``; the
response is ``{"results": [...], "next": "<url or null>"}``.

Unlike DRF's class, a bad ``limit`` (not an integer, ≤ 0, > 500) or a bad ``cursor`` is a 400
problem (code ``invalid``, ``errors`` naming the parameter) instead of being silently clamped
or answered with a 404. Subclass and set ``ordering`` for another order (a unique field, or
end with one, so that no row is skipped or repeated)."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

_DIGITS = re.compile(r"[0-9]{1,9}")


class ApiCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 500
    ordering = "-id"
    invalid_cursor_message = "Invalid cursor: pass the `next` URL of the previous page unchanged."

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be an integer from 1 to {self.max_page_size}."
                    ]
                }
            )
        return int(raw)

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, DjangoValidationError) as exc:
            # a cursor that decodes but whose position does not fit the ordering field
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise self._invalid_cursor() from exc

    def _invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise self._invalid_cursor() from exc

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The page to return, from the `next` URL of the previous page.",
                # DRF's cursor: base64 of its position
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9+/]*={0,2}$"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}).",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                },
            },
        ]
