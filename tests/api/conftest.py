from __future__ import annotations

import pytest
import time_machine

from tests.billing.scenario import grant, setup_customer, setup_meter, setup_plan
from tests.wallets.helpers import ensure_currencies


@pytest.fixture
def tokens(api):
    """acme on ``pro`` (``llm_tokens`` at USD 0.01 a token) with a grant ``g1`` of USD 10,
    set up on 2026-01-10; returns the API key."""
    ensure_currencies()
    with time_machine.travel("2026-01-10T12:00:00Z", tick=False):
        setup_meter(api, "llm_tokens", "tokens")
        setup_plan(api, "pro", [{"meter": "llm_tokens", "model": "per_unit", "unit_price": "0.01"}])
        setup_customer(api, plan="pro")
        grant(api, "acme", "USD", "10.00", id="g1")
    return api.raw_key
