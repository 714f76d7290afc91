"""A customer's usage over the API: the period's usage per meter and its spend."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response

from billing.api.fields import JSONObject, parse_time
from billing.selectors.customers import customer_get
from billing.selectors.usage import usage_for_period


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
        moment = parse_time(at, "at") if at else timezone.now()
        return Response(usage_for_period(customer=customer, at=moment))
