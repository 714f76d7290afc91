"""Usage events over the API (docs/api.md "Usage"): listing, charging one or a batch, reading
and reversing an event."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers
from rest_framework.response import Response

from billing.api.errors import flatten_errors
from billing.api.event_input import (
    BalanceAvailableSerializer,
    EventInputSerializer,
    outcome_response,
    parse_event,
)
from billing.api.fields import DecimalString, JSONObject, parse_time
from billing.api.idempotency import idempotency_key, idempotent
from billing.metering import (
    EventData,
    Outcome,
    declined_event,
    event_charge,
    event_get,
    event_reverse,
    events_charge_batch,
)
from billing.models import UsageEvent
from billing.selectors.customers import customer_get
from billing.selectors.events import usage_event_list
from core.errors import BillfoldError, ValidationFailed
from core.text import plain

MAX_BATCH = 1000


class EventSerializer(serializers.Serializer):
    """Output shape of an event (for the schema): ``event_json``, and the answer of
    ``POST /events``. ``charge`` and ``balances`` are there when the event was charged
    (``balances`` on a declined event too), ``decline_code`` when it was declined,
    ``reversed_at`` when it was reversed."""

    id = serializers.CharField()
    status = serializers.ChoiceField(choices=UsageEvent.Status.values)
    customer = serializers.CharField()
    meter = serializers.CharField()
    quantity = DecimalString(allow_zero=True, places=None)
    timestamp = serializers.DateTimeField()
    received_at = serializers.DateTimeField(required=False)
    properties = JSONObject(required=False)
    charge = JSONObject(required=False, allow_null=True)
    balances = BalanceAvailableSerializer(many=True, required=False)
    decline_code = serializers.CharField(required=False)
    reversed_at = serializers.DateTimeField(required=False)


class EventsView(generics.GenericAPIView):
    write_scope = "events"
    problems = {"post": (402, 422)}

    @extend_schema(
        operation_id="events_list",
        parameters=[
            OpenApiParameter("customer", str, required=False, description="external_id"),
            OpenApiParameter("meter", str, required=False, description="A meter's code."),
            OpenApiParameter("status", str, required=False, enum=list(UsageEvent.Status.values)),
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                required=False,
                description="Events at or after this time (ISO 8601 with an offset).",
            ),
            OpenApiParameter(
                "until",
                OpenApiTypes.DATETIME,
                required=False,
                description="Events before this time (ISO 8601 with an offset).",
            ),
        ],
        responses=EventSerializer(many=True),
    )
    def get(self, request):
        params = request.query_params
        customer = customer_get(external_id=params["customer"]) if "customer" in params else None
        status = params.get("status")
        if status is not None and status not in UsageEvent.Status.values:
            raise ValidationFailed(
                "Unknown status.", errors={"status": list(UsageEvent.Status.values)}
            )
        since = parse_time(params["since"], "since") if "since" in params else None
        until = parse_time(params["until"], "until") if "until" in params else None
        query = usage_event_list(
            customer=customer, meter=params.get("meter"), status=status, since=since, until=until
        )
        page = self.paginate_queryset(query)
        return self.get_paginated_response([event_json(e) for e in page])

    @extend_schema(request=EventInputSerializer, responses={201: EventSerializer})
    def post(self, request):
        return outcome_response(event_charge(data=parse_event(request.data)))


def event_json(event: UsageEvent) -> dict[str, Any]:
    body = dict(event.response or {})
    if event.status == UsageEvent.Status.DECLINED:
        body = dict(declined_event(body))  # its answer was the problem around it
    body.update(
        {
            "id": event.event_id,
            "status": event.status,
            "customer": event.customer.external_id,
            "meter": event.meter.code,
            "quantity": plain(event.quantity),
            "timestamp": event.timestamp.isoformat(),
            "received_at": event.received_at.isoformat(),
        }
    )
    if event.status == UsageEvent.Status.DECLINED:
        body["decline_code"] = event.decline_code
    if event.reversed_at:
        body["reversed_at"] = event.reversed_at.isoformat()
    return body


class EventDetailView(generics.GenericAPIView):
    write_scope = "events"

    @extend_schema(responses=EventSerializer)
    def get(self, request, event_id: str):
        return Response(event_json(event_get(event_id=event_id)))


class EventReverseView(generics.GenericAPIView):
    write_scope = "events"

    @extend_schema(request=None, responses=EventSerializer)
    def post(self, request, event_id: str):
        def reverse() -> Response:
            return Response(event_json(event_reverse(event_id=event_id)))

        return idempotent(
            request, scope="event-reverse", key=idempotency_key(request), handler=reverse
        )


BatchBody = inline_serializer(
    "EventBatch", {"events": serializers.ListField(child=EventInputSerializer())}
)


@extend_schema_field(
    {
        "description": (
            "The event's id as it was sent: a string, or for an invalid event whatever it "
            "was (null when there was none)."
        ),
        "nullable": True,
    }
)
class SentValueField(serializers.Field):
    pass


class EventBatchResultSerializer(serializers.Serializer):
    """One event's result in a batch: ``code`` names why it was declined or invalid,
    ``detail`` and ``errors`` say what was invalid."""

    id = SentValueField()
    status = serializers.ChoiceField(choices=["accepted", "declined", "invalid", "reversed"])
    code = serializers.CharField(allow_null=True)
    charge = JSONObject(allow_null=True)
    balances = BalanceAvailableSerializer(many=True, required=False, allow_null=True)
    replayed = serializers.BooleanField()
    detail = serializers.CharField(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class EventBatchResultsSerializer(serializers.Serializer):
    results = EventBatchResultSerializer(many=True)


class EventBatchView(generics.GenericAPIView):
    write_scope = "events"

    @extend_schema(
        request=BatchBody,
        responses={200: EventBatchResultsSerializer},
    )
    def post(self, request):
        events = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(events, list):
            raise ValidationFailed(
                'The body must be {"events": [...]}.', errors={"events": ["A list of events."]}
            )
        if len(events) > MAX_BATCH:
            raise ValidationFailed(
                f"At most {MAX_BATCH} events in a batch.",
                errors={"events": [f"At most {MAX_BATCH} events; got {len(events)}."]},
            )
        parsed: list[EventData | dict] = []
        now = timezone.now()  # the batch's time of receipt: the time of events that give none
        for item in events:
            try:
                parsed.append(parse_event(item, now))
            except serializers.ValidationError as exc:
                parsed.append(
                    _invalid(item, "invalid", "Invalid event.", flatten_errors(exc.detail))
                )
            except BillfoldError as exc:
                parsed.append(_invalid(item, exc.code, exc.detail, exc.errors))
        valid = [p for p in parsed if isinstance(p, EventData)]
        outcomes = iter(events_charge_batch(events=valid, now=now))
        results = [p if isinstance(p, dict) else _batch_result(p, next(outcomes)) for p in parsed]
        return Response({"results": results})


def _invalid(item: Any, code: str, detail: str, errors: dict) -> dict[str, Any]:
    return {
        "id": _echoed_id(item),
        "status": "invalid",
        "code": code,
        "detail": detail,
        "errors": errors,
        "charge": None,
        "replayed": False,
    }


def _echoed_id(item: Any) -> Any:
    """The id an invalid event of a batch is answered with: as sent, unless it is text no
    JSON answer can carry (a lone surrogate), which would fail the whole batch's answer."""
    event_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(event_id, str):
        try:
            event_id.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return event_id


def _batch_result(data: EventData, outcome: Outcome | BillfoldError) -> dict[str, Any]:
    if isinstance(outcome, BillfoldError):
        return _invalid({"id": data.id}, outcome.code, outcome.detail, outcome.errors)
    body = outcome.body
    if outcome.status_code == 402:
        return {
            "id": data.id,
            "status": "declined",
            "code": body.get("code"),
            "charge": None,
            "replayed": outcome.replayed,
        }
    return {
        "id": data.id,
        "status": body.get("status", "accepted"),
        "code": None,
        "charge": body.get("charge"),
        "balances": body.get("balances"),
        "replayed": outcome.replayed,
    }
