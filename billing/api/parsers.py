"""JSON parsing without floats: every JSON number becomes a Decimal exactly as written, and
the non-standard constants NaN and Infinity are refused (PRODUCT.md §3: no floats anywhere)."""

from __future__ import annotations

import json
from decimal import Decimal

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH_HINT = "The body must be a JSON document."


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid number")


class DecimalJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            raw = stream.read().decode(encoding) if stream is not None else ""
            return json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None


def plain_json(value):
    """Free-form JSON (metadata, event properties) with the parser's Decimals turned back into
    JSON numbers: integers stay exact, other numbers become floats. These values are the
    integrator's own data, never amounts Billfold computes with."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_json(item) for item in value]
    return value
