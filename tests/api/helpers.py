from __future__ import annotations

import json
from typing import Any

PROBLEM_TYPE = "https://billfold.dev/problems/"


def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem-details body of ``response`` after checking its status, content type and
    standard members."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["type"] == PROBLEM_TYPE + code
    assert body["status"] == status
    assert body["code"] == code
    return body
