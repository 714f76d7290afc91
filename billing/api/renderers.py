"""A faster JSON renderer for the large answers Billfold builds itself.

A batch's answer is 1,000 results of text, integers, booleans, nulls, lists and objects.
DRF's ``JSONRenderer`` encodes it with the standard library, which cost ~5% of a batch's
Python (docs/performance.md). ``orjson`` writes the same bytes for such values several
times faster. Anything it would write differently goes to DRF's renderer unchanged:

- ``Decimal``, dates and times, lazy text, subclasses of ``str``, ``int``, ``dict`` or
  ``list``, dataclasses and anything else without a plain JSON form
  (``core.jsontext``: DRF's encoder turns these into JSON its own way);
- integers beyond 64 bits;
- text that is not valid Unicode (lone surrogates), which DRF refuses in its own words;
- an indented rendering (``Accept: application/json; indent=4``).

Floats are the one type both write natively with a different spelling at times
(``0.00001`` against ``1e-05``): the same number, which any JSON reader reads back equal.
Billfold's own answers hold none (amounts are text, docs/charging.md); only an integrator's
free-form properties or metadata, echoed back, can. Walking every answer to look for them
would cost more than the standard library's encoding saves. NaN and infinity, which DRF
refuses and orjson would write as null, never reach an answer: no input can store them
(``event_data`` refuses them in properties; PostgreSQL's jsonb refuses them elsewhere).
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer

from core.jsontext import orjson_exact

# As DRF's renderer: these two are valid JSON but end a JavaScript string literal.
LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def plain_json_bytes(data: Any) -> bytes | None:
    """``data`` as DRF's compact, Unicode ``JSONRenderer`` writes it, or None where orjson
    could not write the same bytes (floats: the same numbers)."""
    content = orjson_exact(data)
    if content is None:
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
