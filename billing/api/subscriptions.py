"""`/api/v1/subscriptions` (API.md "Customers, subscriptions, wallets")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.idempotency import idempotency_key, idempotent
from billing.models import Subscription
from billing.selectors.customers import customer_get
from billing.services.subscriptions import subscription_create


class SubscriptionSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=255)
    plan = serializers.CharField(max_length=64)
    start = serializers.DateTimeField(required=False, default=None)
    seats = serializers.IntegerField(min_value=0, max_value=1_000_000, default=1)
    overage = serializers.ChoiceField(choices=Subscription.Overage.values, default="wallet")

    def to_representation(self, sub: Subscription) -> dict:
        return {
            "id": sub.pk,
            "customer": sub.customer.external_id,
            "plan": sub.plan_version.plan.code,
            "plan_version": sub.plan_version.version,
            "status": sub.status,
            "seats": sub.seats,
            "overage": sub.overage,
            "started_at": sub.started_at.isoformat(),
            "current_period": {
                "start": sub.current_period_start.isoformat(),
                "end": sub.current_period_end.isoformat(),
            },
            "trial_ends_at": sub.trial_ends_at.isoformat() if sub.trial_ends_at else None,
            "cancel_at_period_end": sub.cancel_at_period_end,
        }


class SubscriptionListView(generics.GenericAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        query = Subscription.objects.select_related("customer", "plan_version__plan")
        external_id = self.request.query_params.get("customer")
        if external_id is not None:
            query = query.filter(customer=customer_get(external_id=external_id))
        return query

    @extend_schema(parameters=[OpenApiParameter("customer", str, required=False)])
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @extend_schema(request=SubscriptionSerializer, responses={201: SubscriptionSerializer})
    def post(self, request):
        def create() -> Response:
            data = SubscriptionSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            sub = subscription_create(
                customer=customer_get(external_id=values["customer"]),
                plan=values["plan"],
                start=values["start"],
                seats=values["seats"],
                overage=values["overage"],
            )
            return Response(SubscriptionSerializer(sub).data, status=status.HTTP_201_CREATED)

        return idempotent(
            request, scope="subscriptions", key=idempotency_key(request), handler=create
        )
