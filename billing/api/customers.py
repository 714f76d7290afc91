"""`/api/v1/customers`: create, read, update and list customers (docs/api.md)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.fields import ClientId, CurrencyCode, DecimalString, JSONObject
from billing.api.idempotency import idempotency_key, idempotent
from billing.models import Customer
from billing.selectors.customers import customer_get, customer_list
from billing.services.customers import customer_create, customer_update
from core.text import plain


class CustomerSerializer(serializers.Serializer):
    external_id = ClientId(slash=False)
    name = serializers.CharField(max_length=255)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    currency = CurrencyCode()
    tax_rate = DecimalString(allow_zero=True, places=None, required=False)
    metadata = JSONObject(required=False, default=dict)
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, customer: Customer) -> dict:
        return {
            "external_id": customer.external_id,
            "name": customer.name,
            "email": customer.email,
            "currency": customer.currency_id,
            "tax_rate": plain(customer.tax_rate),
            "metadata": customer.metadata,
            "created_at": customer.created_at.isoformat(),
        }


class CustomerPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    currency = CurrencyCode(required=False)
    tax_rate = DecimalString(allow_zero=True, places=None, required=False)
    metadata = JSONObject(required=False)

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Cannot be changed."] for name in sorted(unknown)}
            )
        return attrs


class CustomerListView(generics.GenericAPIView):
    serializer_class = CustomerSerializer

    @extend_schema(operation_id="customers_list", responses=CustomerSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(customer_list())
        return self.get_paginated_response(CustomerSerializer(page, many=True).data)

    @extend_schema(request=CustomerSerializer, responses={201: CustomerSerializer})
    def post(self, request):
        def create() -> Response:
            data = CustomerSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            customer = customer_create(
                external_id=values["external_id"],
                name=values["name"],
                email=values["email"],
                currency=values["currency"],
                tax_rate=values.get("tax_rate", "0"),
                metadata=values["metadata"],
            )
            return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)

        return idempotent(request, scope="customers", key=idempotency_key(request), handler=create)


class CustomerDetailView(generics.GenericAPIView):
    serializer_class = CustomerSerializer

    def get(self, request, external_id: str):
        return Response(CustomerSerializer(customer_get(external_id=external_id)).data)

    @extend_schema(request=CustomerPatchSerializer, responses={200: CustomerSerializer})
    def patch(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = CustomerPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        customer = customer_update(customer=customer, **changes)
        return Response(CustomerSerializer(customer).data)
