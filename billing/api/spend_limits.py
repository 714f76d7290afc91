"""A customer's spend limit over the API: read, set and remove."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.fields import DecimalString, WholeNumber
from billing.metering import spend_limit_delete, spend_limit_set
from billing.models import SpendLimit
from billing.selectors.customers import customer_get
from billing.selectors.spend_limits import spend_limit_for
from core.errors import NotFound
from core.text import plain


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
        "amount": plain(limit.amount),
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
        limit = spend_limit_for(customer.pk)
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
