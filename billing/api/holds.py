"""Holds over the API (docs/api.md "Usage"): authorize usage before it happens, read, capture
the actual quantity or void."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response

from billing.api.event_input import EventInputSerializer, outcome_response
from billing.api.fields import ClientId, DecimalString, JSONObject, WholeNumber
from billing.api.idempotency import idempotency_key, idempotent
from billing.metering import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    hold_authorize,
    hold_cancel,
    hold_capture_usage,
    hold_get,
    hold_json,
)
from wallets.models import Hold


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
        return outcome_response(outcome)


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
        return outcome_response(outcome)


class HoldVoidView(generics.GenericAPIView):
    write_scope = "events"

    @extend_schema(request=None, responses=HoldSerializer)
    def post(self, request, hold_id: str):
        def void() -> Response:
            return Response(hold_cancel(hold_id=hold_id))

        return idempotent(request, scope="hold-void", key=idempotency_key(request), handler=void)
