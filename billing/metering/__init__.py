"""Metering: charging usage events to wallets (docs/charging.md).

The public surface: charge one event or a batch, reserve / capture / void a usage hold,
reverse an event, replay or read an event, spend limits, the errors callers catch, and the
lock the billing run takes on the period counters of periodically rated prices.
"""

from billing.metering.answers import Outcome, declined_event, event_get, event_replay
from billing.metering.batch import events_charge_batch
from billing.metering.charge import event_charge
from billing.metering.decide import allowance_prefix, allowance_source
from billing.metering.errors import (
    EventNotAccepted,
    InvalidTimestamp,
    KeyRefused,
    NoActiveSubscription,
    PeriodClosed,
    UnknownCustomer,
    UnknownMeter,
    Unprocessable,
)
from billing.metering.holds import (
    hold_authorize,
    hold_cancel,
    hold_capture_usage,
    hold_get,
    hold_json,
)
from billing.metering.input import EventData, event_data
from billing.metering.periodic_bounds import counters_lock
from billing.metering.reversal import event_reverse, reversal_credit_note
from billing.metering.spend import (
    SpendLimitExceeded,
    spend_limit_delete,
    spend_limit_set,
)
from wallets.services.holds import DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS

__all__ = [
    "DEFAULT_HOLD_SECONDS",
    "MAX_HOLD_SECONDS",
    "EventData",
    "EventNotAccepted",
    "InvalidTimestamp",
    "KeyRefused",
    "NoActiveSubscription",
    "Outcome",
    "PeriodClosed",
    "SpendLimitExceeded",
    "UnknownCustomer",
    "UnknownMeter",
    "Unprocessable",
    "allowance_prefix",
    "allowance_source",
    "counters_lock",
    "declined_event",
    "event_charge",
    "event_data",
    "event_get",
    "event_replay",
    "event_reverse",
    "events_charge_batch",
    "hold_authorize",
    "hold_cancel",
    "hold_capture_usage",
    "hold_get",
    "hold_json",
    "reversal_credit_note",
    "spend_limit_delete",
    "spend_limit_set",
]
