"""JSON text through orjson where it is the standard library's, byte for byte.

orjson encodes several times faster than ``json``. For text, 64-bit integers, booleans,
null, lists and objects with text keys it writes what ``json.dumps`` writes with compact
separators and ``ensure_ascii=False``. Everything else is passed to ``default``, which
refuses it (``orjson_exact`` returns None), because orjson's own forms differ: a UTC time
ends in "+00:00", a subclass of ``str`` such as a Django choice is written as its value,
a dataclass as an object. Integers beyond 64 bits and lone surrogates it refuses itself.
Floats it writes natively, sometimes spelled differently (``0.00001`` for ``1e-05``):
callers that must match byte for byte keep floats away (``request_hash``)."""

from __future__ import annotations

from typing import Any

import orjson

# every type orjson would write in a form of its own goes to ``_refuse`` instead
EXACT = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


class _NotExact(TypeError):
    pass


def _refuse(value: Any) -> Any:
    raise _NotExact(type(value).__name__)


def orjson_exact(data: Any, *, sort_keys: bool = False) -> bytes | None:
    """``data`` as UTF-8 JSON text with compact separators, or None where orjson would not
    write what the standard library writes (see above)."""
    option = EXACT | orjson.OPT_SORT_KEYS if sort_keys else EXACT
    try:
        return orjson.dumps(data, default=_refuse, option=option)
    except (orjson.JSONEncodeError, _NotExact):
        return None
