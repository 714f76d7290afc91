"""Usage over the API (docs/api.md "Usage"): events, batches, reversal, holds; and a customer's
usage and spend limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.errors import CONTENT_TYPE, _flatten
from billing.api.fields import (
    AwareDateTimeField,
    ClientId,
    DecimalString,
    JSONObject,
    StrictCharField,
    WholeNumber,
)
from billing.api.idempotency import REPLAYED, idempotency_key, idempotent
from billing.metering import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    EventData,
    Outcome,
    declined_event,
    event_charge,
    event_data,
    event_get,
    event_reverse,
    events_charge_batch,
    hold_authorize,
    hold_cancel,
    hold_capture_usage,
    hold_get,
    hold_json,
    spend_limit_delete,
    spend_limit_set,
)
from billing.models import SpendLimit, UsageEvent
from billing.selectors.customers import customer_get
from billing.selectors.usage import usage_for_period
from wallets.errors import BillfoldError, NotFound, ValidationFailed
from wallets.ids import id_problems
from wallets.models import Hold

MAX_BATCH = 1000


class EventInputSerializer(serializers.Serializer):
    id = ClientId()
    customer = StrictCharField(max_length=255)
    meter = StrictCharField(max_length=64)
    quantity = DecimalString(allow_zero=True, required=False, default=None, places=None)
    timestamp = AwareDateTimeField(required=False, default=None)
    properties = JSONObject(required=False, default=dict)

    def to_event(self, now: datetime | None = None) -> EventData:
        """``now``: the time of receipt, an event's time when it gives none."""
        v = self.validated_data
        return event_data(
            id=v["id"],
            customer=v["customer"],
            meter=v["meter"],
            quantity=v["quantity"] if v["quantity"] is not None else "1",
            timestamp=v["timestamp"],
            properties=v["properties"],
            now=now,
        )


def _outcome_response(outcome: Outcome) -> Response:
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    content_type = CONTENT_TYPE if outcome.status_code >= 400 else None
    return Response(
        outcome.body, status=outcome.status_code, headers=headers, content_type=content_type
    )


EVENT_FIELDS = frozenset(EventInputSerializer._declared_fields)


def _plain_text(value: Any, max_length: int) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isprintable()
        and (value.isascii() and value == value.strip())
    )


def _parse_plain(payload: Any, now: datetime | None = None) -> EventData | None:
    """The common well-formed event (ASCII ids, quantity as a string or an integer, no
    timestamp) checked without the serializer, which costs more than charging it. Anything
    else returns None and goes through the serializer, which words the errors."""
    if type(payload) is not dict or not payload.keys() <= EVENT_FIELDS or "timestamp" in payload:
        return None
    event_id, customer, meter = payload.get("id"), payload.get("customer"), payload.get("meter")
    if not (_plain_text(event_id, 255) and _plain_text(customer, 255) and _plain_text(meter, 64)):
        return None
    if id_problems(event_id, slash=True):
        return None  # the serializer's ClientId words the error
    quantity = payload.get("quantity", "1")
    properties = payload.get("properties", {})
    if type(quantity) not in (str, int) or type(properties) is not dict:
        return None
    if properties:
        from billing.api.parsers import free_form_too_deep, plain_json

        if free_form_too_deep(properties):
            return None  # the serializer's JSONObject words the error
        properties = plain_json(properties)  # as the serializer's JSONObject does
    try:
        return event_data(
            id=event_id,
            customer=customer,
            meter=meter,
            quantity=quantity,
            properties=properties,
            now=now,
        )
    except ValidationFailed:
        return None


def _parse_event(payload: Any, now: datetime | None = None) -> EventData:
    plain = _parse_plain(payload, now)
    if plain is not None:
        return plain
    data = EventInputSerializer(data=payload)
    data.is_valid(raise_exception=True)
    return data.to_event(now)


class BalanceAvailableSerializer(serializers.Serializer):
    asset = serializers.CharField()
    available = DecimalString(signed=True)


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
        query = UsageEvent.objects.select_related("customer", "meter")
        params = request.query_params
        if "customer" in params:
            query = query.filter(customer=customer_get(external_id=params["customer"]))
        if "meter" in params:
            query = query.filter(meter__code=params["meter"])
        if "status" in params:
            if params["status"] not in UsageEvent.Status.values:
                raise ValidationFailed(
                    "Unknown status.", errors={"status": list(UsageEvent.Status.values)}
                )
            query = query.filter(status=params["status"])
        for name, lookup in (("since", "timestamp__gte"), ("until", "timestamp__lt")):
            if name in params:
                query = query.filter(**{lookup: _parse_time(params[name], name)})
        page = self.paginate_queryset(query)
        return self.get_paginated_response([event_json(e) for e in page])

    @extend_schema(request=EventInputSerializer, responses={201: EventSerializer})
    def post(self, request):
        return _outcome_response(event_charge(data=_parse_event(request.data)))


def _parse_time(value: str, name: str) -> datetime:
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or timezone.is_naive(parsed):
        raise ValidationFailed(
            f"{name} must be an ISO 8601 time with an offset.", errors={name: ["Invalid time."]}
        )
    return parsed


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
            "quantity": format(event.quantity.normalize(), "f") if event.quantity else "0",
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
                parsed.append(_parse_event(item, now))
            except serializers.ValidationError as exc:
                parsed.append(_invalid(item, "invalid", "Invalid event.", _flatten(exc.detail)))
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


# --- holds ---------------------------------------------------------------------------------------


class HoldInputSerializer(EventInputSerializer):
    expires_in = WholeNumber(min_value=1, max_value=MAX_HOLD_SECONDS, default=DEFAULT_HOLD_SECONDS)


class CaptureSerializer(serializers.Serializer):
    quantity = DecimalString(allow_zero=True, places=None)
    event_id = ClientId(required=False, default=None)


class HeldSerializer(serializers.Serializer):
    asset = serializers.CharField()
    amount = DecimalString(allow_zero=True, places=None)


@extend_schema_field(
    {
        "description": (
            "The capturing event: its id once captured (null before), or in the answer of a "
            "capture the event itself."
        ),
        "nullable": True,
        "oneOf": [{"type": "string"}, {"$ref": "#/components/schemas/Event"}],
    }
)
class HoldEventField(serializers.Field):
    pass


class HoldSerializer(serializers.Serializer):
    """Output shape of a hold (for the schema)."""

    id = serializers.CharField()
    status = serializers.ChoiceField(choices=Hold.Status.values)
    customer = serializers.CharField(allow_null=True)
    meter = serializers.CharField(allow_null=True)
    quantity = DecimalString(allow_zero=True, allow_null=True, places=None)
    properties = JSONObject()
    held = HeldSerializer(many=True)
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    event = HoldEventField()


class HoldsView(generics.GenericAPIView):
    write_scope = "events"
    problems = {"post": (402, 422)}

    @extend_schema(request=HoldInputSerializer, responses={201: HoldSerializer})
    def post(self, request):
        data = HoldInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = hold_authorize(data=data.to_event(), expires_in=data.validated_data["expires_in"])
        return _outcome_response(outcome)


class HoldDetailView(generics.GenericAPIView):
    write_scope = "events"

    @extend_schema(responses=HoldSerializer)
    def get(self, request, hold_id: str):
        return Response(hold_json(hold_get(hold_id=hold_id)))


class HoldCaptureView(generics.GenericAPIView):
    write_scope = "events"
    problems = {"post": (402, 422)}

    @extend_schema(request=CaptureSerializer, responses=HoldSerializer)
    def post(self, request, hold_id: str):
        data = CaptureSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = hold_capture_usage(
            hold_id=hold_id,
            quantity=data.validated_data["quantity"],
            event_id=data.validated_data["event_id"],
        )
        return _outcome_response(outcome)


class HoldVoidView(generics.GenericAPIView):
    write_scope = "events"

    @extend_schema(request=None, responses=HoldSerializer)
    def post(self, request, hold_id: str):
        def void() -> Response:
            return Response(hold_cancel(hold_id=hold_id))

        return idempotent(request, scope="hold-void", key=idempotency_key(request), handler=void)


# --- usage and spend limits ---------------------------------------------------------------


class SpendLimitSerializer(serializers.Serializer):
    amount = DecimalString(places=None)
    window = serializers.ChoiceField(choices=SpendLimit.Window.values, default="period")
    mode = serializers.ChoiceField(choices=SpendLimit.Mode.values, default="hard")
    alert_thresholds = serializers.ListField(
        child=WholeNumber(min_value=1, max_value=100), default=list, max_length=10
    )


def spend_limit_json(limit: SpendLimit) -> dict[str, Any]:
    return {
        "customer": limit.customer.external_id,
        "amount": format(limit.amount.normalize(), "f"),
        "currency": limit.customer.currency_id,
        "window": limit.window,
        "mode": limit.mode,
        "alert_thresholds": limit.alert_thresholds,
        "updated_at": limit.updated_at.isoformat(),
    }


class SpendLimitView(generics.GenericAPIView):
    serializer_class = SpendLimitSerializer

    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        limit = SpendLimit.objects.filter(customer=customer).first()
        if limit is None:
            raise NotFound(f"{external_id} has no spend limit.")
        return Response(spend_limit_json(limit))

    @extend_schema(request=SpendLimitSerializer, responses=SpendLimitSerializer)
    def put(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = SpendLimitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        limit = spend_limit_set(customer=customer, **data.validated_data)
        return Response(spend_limit_json(limit))

    def delete(self, request, external_id: str):
        spend_limit_delete(customer=customer_get(external_id=external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsageView(generics.GenericAPIView):
    pagination_class = None

    @extend_schema(
        parameters=[OpenApiParameter("at", str, required=False)],
        responses=inline_serializer(
            "Usage",
            {
                "period": JSONObject(),
                "meters": serializers.ListField(child=JSONObject()),
                "spend": JSONObject(),
            },
        ),
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        at = request.query_params.get("at")
        moment = _parse_time(at, "at") if at else timezone.now()
        return Response(usage_for_period(customer=customer, at=moment))
