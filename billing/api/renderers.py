"""A faster JSON renderer for the large answers Billfold builds itself.

A batch's answer is 1,000 results of text, integers, booleans, nulls, lists and objects.
DRF's ``JSONRenderer`` encodes it with the standard library, which cost ~5% of a batch's
Python (docs/performance.md). ``orjson`` writes the same bytes for such values several
times faster. Anything it would write differently goes to DRF's renderer unchanged:

- ``Decimal``, dates and times, UUIDs, lazy text, subclasses of ``str``, ``int``, ``dict``
  or ``list``, dataclasses and anything else without a plain JSON form (``_refuse``: DRF's
  encoder turns these into JSON its own way);
- integers beyond 64 bits;
- text that is not valid Unicode (lone surrogates), which DRF refuses in its own words;
- an indented rendering (``Accept: application/json; indent=4``).

Floats are the one type both write natively with a different spelling at times
(``0.00001`` against ``1e-05``): the same number, which any JSON reader reads back equal.
Billfold's own answers hold none (amounts are text, PRODUCT.md §3); only an integrator's
free-form properties or metadata, echoed back, can. Walking every answer to look for them
would cost more than the standard library's encoding saves.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer

# Passed to ``_refuse`` instead of encoded natively: orjson's own forms differ from DRF's
# (a UTC time ends in "+00:00", not "Z"; a str subclass such as a Django choice is
# written as its value where DRF's encoder sees the subclass).
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
OPTIONS |= orjson.OPT_PASSTHROUGH_DATACLASS

# As DRF's renderer: these two are valid JSON but end a JavaScript string literal.
LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class _NotPlain(TypeError):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain(type(value).__name__)


def plain_json_bytes(data: Any) -> bytes | None:
    """``data`` as DRF's compact, Unicode ``JSONRenderer`` writes it, or None where orjson
    could not write the same bytes (floats: the same numbers)."""
    try:
        content = orjson.dumps(data, default=_refuse, option=OPTIONS)
    except (orjson.JSONEncodeError, _NotPlain):
        return None
    for raw, escaped in LINE_SEPARATORS:
        if raw in content:
            content = content.replace(raw, escaped)
    return content


class PlainJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer``, through orjson where the bytes are the same (the API's
    renderer: ``REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]`` and the usage fast path)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        if not (self.compact and not self.ensure_ascii and self.strict):
            return super().render(data, accepted_media_type, renderer_context)
        content = plain_json_bytes(data)
        if content is None:
            return super().render(data, accepted_media_type, renderer_context)
        return content
