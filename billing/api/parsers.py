"""JSON parsing without floats: every JSON number becomes an int or, with a fraction or an
exponent, a ``JsonFraction`` (a Decimal exactly as written, which free-form data keeps and
amounts refuse: ``wallets.services.amounts``), and the non-standard constants NaN and
Infinity are refused (no floats anywhere: docs/pricing.md).

Nesting is bounded twice: a body deeper than ``MAX_BODY_DEPTH`` levels of objects and arrays
is malformed (nothing past the parser then recurses deep enough to fail), and a free-form
value (event properties, metadata) deeper than ``FREE_FORM_MAX_DEPTH`` is refused as
invalid by its field (``free_form_too_deep``, the one check the serializers and the usage
fast path share)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.numbers import JsonFraction

MAX_BODY_DEPTH = 100
FREE_FORM_MAX_DEPTH = 32
FREE_FORM_DEPTH_MESSAGE = f"At most {FREE_FORM_MAX_DEPTH} levels of nested objects and arrays."


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels deep (an object
    or array is one level; a scalar none). Level by level, without recursion."""
    level = [value]
    depth = 0
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return False


def free_form_too_deep(value: Any) -> bool:
    """A free-form value (properties, metadata) nested deeper than Billfold keeps."""
    return json_depth_exceeds(value, FREE_FORM_MAX_DEPTH)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid number")


class DecimalJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            raw = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(raw, parse_float=JsonFraction, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None
        if json_depth_exceeds(data, MAX_BODY_DEPTH):
            raise ParseError(
                f"Malformed JSON: objects and arrays nested more than {MAX_BODY_DEPTH} levels deep."
            )
        return data


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
