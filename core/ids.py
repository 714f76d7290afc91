"""The rule for ids a client chooses (event, hold and grant ids, customers' external ids):
an id is accepted only if its URL can address it afterwards.

Any character may be sent percent-encoded (``?`` as ``%3F``, ``#`` as ``%23``, ``%`` as
``%25``, a space as ``%20``, non-ASCII as UTF-8), so those are allowed. Refused are:

- control characters (C0, DEL, C1: a newline, a tab...) and lone surrogates: not text a URL
  or a log line carries intact;
- where ``/`` is allowed (``slash=True``: event, hold and grant ids, routed as paths), an
  empty segment (a leading or trailing ``/``, ``//``), a ``.`` or ``..`` segment (clients and
  proxies collapse them), and a last segment that is one of the routes' actions
  (``reverse``, ``capture``, ``void``: ``…/a/void`` would be the action on ``a``) or the
  whole id ``batch`` (``/events/batch`` is the batch route);
- where it is not (``slash=False``: external ids, one URL segment), ``/`` itself and the
  ids ``.`` and ``..``.
"""

from __future__ import annotations

import unicodedata

ROUTE_ACTIONS = frozenset({"reverse", "capture", "void"})
ROUTE_NAMES = frozenset({"batch"})
DOT_SEGMENTS = frozenset({".", ".."})


CONTROL_MESSAGE = "Must not contain control characters."


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def id_problems(value: str, *, slash: bool) -> list[str]:
    """What makes ``value`` an id no URL could address (empty: none)."""
    problems = []
    if has_control_characters(value):
        problems.append(CONTROL_MESSAGE)
    if not slash:
        if "/" in value:
            problems.append("Must not contain '/' (it is used in URLs).")
        elif value in DOT_SEGMENTS:
            problems.append("Must not be '.' or '..'.")
        return problems
    segments = value.split("/")
    if "" in segments:
        problems.append("Must not start or end with '/' or contain '//'.")
    if DOT_SEGMENTS & set(segments):
        problems.append("Must not contain '.' or '..' between slashes.")
    if len(segments) > 1 and segments[-1] in ROUTE_ACTIONS:
        problems.append(f"Must not end with /{segments[-1]} (an action's URL).")
    if value in ROUTE_NAMES:
        problems.append(f"Must not be '{value}' (a route of its own).")
    return problems
