"""The catalogue over the API: meters and plans with their versions (docs/api.md "Catalogue")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.fields import CurrencyCode, DecimalString, JSONObject
from billing.api.idempotency import idempotency_key, idempotent
from billing.api.pagination import ApiCursorPagination
from billing.selectors.catalog import (
    meter_find,
    meter_list,
    plan_find,
    plan_latest_version,
    plan_list,
    plan_versions,
)
from core.errors import NotFound, ValidationFailed
from core.text import fixed_text
from plans.describe import describe_price
from plans.models import Meter, Plan, PlanVersion
from plans.services import (
    meter_create,
    plan_create,
    plan_version_as_spec,
    plan_version_publish,
    price_spec,
)


class MeterSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    unit = serializers.CharField(max_length=32)
    aggregation = serializers.ChoiceField(choices=Meter.Aggregation.values)
    property = serializers.CharField(max_length=128, required=False, allow_null=True, default=None)

    def to_representation(self, meter: Meter) -> dict:
        return {
            "id": meter.pk,
            "code": meter.code,
            "name": meter.name,
            "unit": meter.unit_id,
            "aggregation": meter.aggregation,
            "property": meter.event_property,
        }


class CodePagination(ApiCursorPagination):
    ordering = "code"


class MeterListView(generics.GenericAPIView):
    serializer_class = MeterSerializer
    pagination_class = CodePagination

    def get_queryset(self):
        return meter_list()

    @extend_schema(operation_id="meters_list", responses=MeterSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MeterSerializer(page, many=True).data)

    @extend_schema(request=MeterSerializer, responses={201: MeterSerializer})
    def post(self, request):
        def create() -> Response:
            data = MeterSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            meter = meter_create(
                code=values["code"],
                name=values["name"],
                unit=values["unit"],
                aggregation=values["aggregation"],
                event_property=values["property"],
            )
            return Response(MeterSerializer(meter).data, status=status.HTTP_201_CREATED)

        return idempotent(request, scope="meters", key=idempotency_key(request), handler=create)


class MeterDetailView(generics.GenericAPIView):
    serializer_class = MeterSerializer

    def get(self, request, code: str):
        meter = meter_find(code=code)
        if meter is None:
            raise NotFound(f"Unknown meter '{code}'.")
        return Response(MeterSerializer(meter).data)


def version_json(version: PlanVersion) -> dict:
    """A version in docs/api.md's plan shape, plus ``version``, ids and readable descriptions."""
    spec = plan_version_as_spec(version)
    decimals = version.currency.decimals
    prices = []
    for price, item in zip(version.prices.all(), spec["prices"], strict=True):
        prices.append(
            {
                "id": price.pk,
                **item,
                "description": describe_price(
                    price_spec(price),
                    included=price.included,
                    unit=price.meter.unit_id,
                    asset=price.asset_id,
                ),
            }
        )
    return {
        "id": version.pk,
        "code": version.plan.code,
        "name": version.name,
        "version": version.version,
        **spec,
        "base_fee": fixed_text(version.base_fee, decimals),
        "seat_price": (
            None if version.seat_price is None else fixed_text(version.seat_price, decimals)
        ),
        "prices": prices,
        "created_at": version.created_at.isoformat(),
    }


PLAN_EXAMPLE = {
    "code": "pro",
    "name": "Pro",
    "currency": "USD",
    "interval": "month",
    "base_fee": "49.00",
    "base_fee_timing": "in_advance",
    "seat_price": None,
    "trial_days": 0,
    "prices": [
        {
            "meter": "llm_tokens",
            "filter": {"model": "gpt-4o"},
            "included": "1000000",
            "model": "graduated",
            "asset": "USD",
            "tiers": [
                {"up_to": "10000000", "unit_price": "0.000002", "flat_fee": "0"},
                {"up_to": None, "unit_price": "0.0000015"},
            ],
        }
    ],
}

PlanBody = inline_serializer(
    "PlanBody",
    {
        "code": serializers.CharField(),
        "name": serializers.CharField(),
        "currency": serializers.CharField(),
        "interval": serializers.ChoiceField(choices=PlanVersion.Interval.values),
        "base_fee": serializers.CharField(required=False),
        "base_fee_timing": serializers.ChoiceField(
            choices=PlanVersion.Timing.values, required=False
        ),
        "seat_price": serializers.CharField(required=False, allow_null=True),
        "trial_days": serializers.IntegerField(required=False),
        "prices": serializers.ListField(child=JSONObject(), required=False),
    },
)


class PriceSerializer(serializers.Serializer):
    """Output shape of a price: the fields of its model (``unit_price``; ``package_size`` and
    ``package_price``; ``tiers``), its id and a readable description."""

    id = serializers.IntegerField()
    meter = serializers.CharField()
    filter = JSONObject()
    included = DecimalString(allow_zero=True, allow_null=True, places=None)
    model = serializers.CharField()
    asset = serializers.CharField()
    unit_price = DecimalString(allow_zero=True, allow_null=True, places=None, required=False)
    package_size = DecimalString(allow_null=True, places=None, required=False)
    package_price = DecimalString(allow_zero=True, allow_null=True, places=None, required=False)
    tiers = serializers.ListField(child=JSONObject(), required=False)
    description = serializers.CharField()


class PlanSerializer(serializers.Serializer):
    """Output shape of a plan version (``version_json``), for the schema."""

    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    currency = CurrencyCode()
    interval = serializers.ChoiceField(choices=PlanVersion.Interval.values)
    base_fee = DecimalString(allow_zero=True, allow_null=True)
    base_fee_timing = serializers.ChoiceField(choices=PlanVersion.Timing.values)
    seat_price = DecimalString(allow_zero=True, allow_null=True)
    trial_days = serializers.IntegerField()
    prices = PriceSerializer(many=True)
    created_at = serializers.DateTimeField()


def _plan_body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    return request.data


class PlanListView(generics.GenericAPIView):
    pagination_class = CodePagination

    def get_queryset(self):
        return plan_list()

    @extend_schema(operation_id="plans_list", responses=PlanSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            [version_json(plan_latest_version(plan=p)) for p in page]
        )

    @extend_schema(
        request=PlanBody,
        responses={201: PlanSerializer},
        examples=[OpenApiExample("Hybrid plan", value=PLAN_EXAMPLE)],
    )
    def post(self, request):
        def create() -> Response:
            body = _plan_body(request)
            version = plan_create(
                code=body.get("code"),
                name=body.get("name"),
                description=body.get("description", "")
                if isinstance(body.get("description"), str)
                else "",
                spec=body,
            )
            return Response(version_json(version), status=status.HTTP_201_CREATED)

        return idempotent(request, scope="plans", key=idempotency_key(request), handler=create)


def plan_by_code(code: str) -> Plan:
    plan = plan_find(code=code)
    if plan is None:
        raise NotFound(f"Unknown plan '{code}'.")
    return plan


class PlanDetailView(generics.GenericAPIView):
    @extend_schema(responses={200: PlanSerializer})
    def get(self, request, code: str):
        return Response(version_json(plan_latest_version(plan=plan_by_code(code))))


class VersionPagination(ApiCursorPagination):
    ordering = "-version"  # the newest first


class PlanVersionsView(generics.GenericAPIView):
    pagination_class = VersionPagination
    problems = {"post": (404,)}  # (also for a meter or asset of a price)

    @extend_schema(operation_id="plans_versions_list", responses=PlanSerializer(many=True))
    def get(self, request, code: str):
        plan = plan_by_code(code)
        page = self.paginate_queryset(plan_versions(plan=plan))
        return self.get_paginated_response([version_json(v) for v in page])

    @extend_schema(request=PlanBody, responses={201: PlanSerializer})
    def post(self, request, code: str):
        def publish() -> Response:
            plan = plan_by_code(code)
            body = _plan_body(request)
            version = plan_version_publish(plan=plan, spec=body, name=body.get("name"))
            return Response(version_json(version), status=status.HTTP_201_CREATED)

        return idempotent(
            request, scope="plan-versions", key=idempotency_key(request), handler=publish
        )
