"""`/api/v1/subscriptions` (docs/api.md "Customers, subscriptions, wallets"): create, list, read,
change seats, change plan, cancel, and the subscription's charge items."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.fields import AwareDateTimeField, DecimalString, WholeNumber, decimal_str
from billing.api.idempotency import idempotency_key, idempotent
from billing.models import ChargeItem, Subscription
from billing.selectors.customers import customer_get
from billing.selectors.subscriptions import (
    subscription_charges,
    subscription_get,
    subscription_list,
)
from billing.subscriptions import (
    MAX_SEATS,
    WHEN,
    subscription_cancel,
    subscription_create,
    subscription_plan_change,
    subscription_seats_change,
)


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


class SubscriptionSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=255)
    plan = serializers.CharField(max_length=64)
    start = AwareDateTimeField(required=False, default=None)
    seats = WholeNumber(min_value=0, max_value=MAX_SEATS, default=1)
    overage = serializers.ChoiceField(choices=Subscription.Overage.values, default="wallet")
    backdate = serializers.BooleanField(
        required=False,
        default=False,
        write_only=True,
        help_text="Allow a start further in the past than the backdating bound (one billing "
        "period by default): periods count from the start, billing begins with the period "
        "containing now.",
    )
    invoice_missed_periods = serializers.BooleanField(
        required=False,
        default=False,
        write_only=True,
        help_text='With "backdate": invoice every period since the start.',
    )

    def to_representation(self, sub: Subscription) -> dict:
        upcoming = sub.next_plan_version
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
            "trial_ends_at": _time(sub.trial_ends_at),
            "cancel_at_period_end": sub.cancel_at_period_end,
            "canceled_at": _time(sub.canceled_at),
            "ended_at": _time(sub.ended_at),
            "next_plan": (
                {"plan": upcoming.plan.code, "version": upcoming.version} if upcoming else None
            ),
            "next_seats": sub.next_seats,
        }


class _StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is a 400 rather than silently ignored."""

    def validate(self, attrs):
        unknown = (
            set(self.initial_data) - set(self.fields)
            if isinstance(self.initial_data, dict)
            else set()
        )
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in sorted(unknown)}
            )
        return attrs


class SeatsSerializer(_StrictSerializer):
    seats = WholeNumber(min_value=0, max_value=MAX_SEATS)


class PlanChangeSerializer(_StrictSerializer):
    plan = serializers.CharField(max_length=64)
    when = serializers.ChoiceField(choices=WHEN, default="period_end")


class CancelSerializer(_StrictSerializer):
    when = serializers.ChoiceField(choices=WHEN, default="period_end")


class ChargeItemSerializer(serializers.Serializer):
    """Output shape of a charge item (for the schema)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    description = serializers.CharField()
    currency = serializers.CharField()
    quantity = DecimalString(allow_null=True)
    unit_price = DecimalString(allow_null=True)
    amount = DecimalString(signed=True)
    period = serializers.DictField(allow_null=True)
    invoice = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, item: ChargeItem) -> dict:
        period = None
        if item.period_start is not None or item.period_end is not None:
            period = {"start": _time(item.period_start), "end": _time(item.period_end)}
        return {
            "id": item.pk,
            "kind": item.kind,
            "description": item.description,
            "currency": item.currency_id,
            "quantity": decimal_str(item.quantity),
            "unit_price": decimal_str(item.unit_price),
            "amount": decimal_str(item.amount),
            "period": period,
            "invoice": item.invoice_id,
            "created_at": item.created_at.isoformat(),
        }


def _represent(subscription: Subscription) -> dict:
    return SubscriptionSerializer(subscription_get(subscription_id=subscription.pk)).data


class SubscriptionListView(generics.GenericAPIView):
    serializer_class = SubscriptionSerializer
    problems = {"post": (404,)}  # an unknown customer or plan

    def get_queryset(self):
        external_id = self.request.query_params.get("customer")
        customer = customer_get(external_id=external_id) if external_id is not None else None
        return subscription_list(customer=customer)

    @extend_schema(
        operation_id="subscriptions_list",
        parameters=[OpenApiParameter("customer", str, required=False)],
        responses=SubscriptionSerializer(many=True),
    )
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
                backdate=values["backdate"],
                invoice_missed_periods=values["invoice_missed_periods"],
            )
            return Response(SubscriptionSerializer(sub).data, status=status.HTTP_201_CREATED)

        return idempotent(
            request, scope="subscriptions", key=idempotency_key(request), handler=create
        )


class SubscriptionDetailView(generics.GenericAPIView):
    serializer_class = SubscriptionSerializer
    problems = {"patch": (409,)}  # the subscription has ended, or its period is not current

    @extend_schema(responses={200: SubscriptionSerializer})
    def get(self, request, subscription_id: str):
        return Response(
            SubscriptionSerializer(subscription_get(subscription_id=subscription_id)).data
        )

    @extend_schema(request=SeatsSerializer, responses={200: SubscriptionSerializer})
    def patch(self, request, subscription_id: str):
        sub = subscription_get(subscription_id=subscription_id)
        data = SeatsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sub = subscription_seats_change(subscription=sub, seats=data.validated_data["seats"])
        return Response(_represent(sub))


class SubscriptionChangePlanView(generics.GenericAPIView):
    serializer_class = PlanChangeSerializer

    @extend_schema(request=PlanChangeSerializer, responses={200: SubscriptionSerializer})
    def post(self, request, subscription_id: str):
        def change() -> Response:
            sub = subscription_get(subscription_id=subscription_id)
            data = PlanChangeSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            sub = subscription_plan_change(
                subscription=sub, plan_code=values["plan"], when=values["when"]
            )
            return Response(_represent(sub))

        return idempotent(
            request, scope="subscription-change-plan", key=idempotency_key(request), handler=change
        )


class SubscriptionCancelView(generics.GenericAPIView):
    serializer_class = CancelSerializer

    @extend_schema(request=CancelSerializer, responses={200: SubscriptionSerializer})
    def post(self, request, subscription_id: str):
        def cancel() -> Response:
            sub = subscription_get(subscription_id=subscription_id)
            data = CancelSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            sub = subscription_cancel(subscription=sub, when=data.validated_data["when"])
            return Response(_represent(sub))

        return idempotent(
            request, scope="subscription-cancel", key=idempotency_key(request), handler=cancel
        )


class SubscriptionChargesView(generics.GenericAPIView):
    serializer_class = ChargeItemSerializer

    def get_queryset(self):
        sub = subscription_get(subscription_id=self.kwargs["subscription_id"])
        return subscription_charges(subscription=sub)

    @extend_schema(
        operation_id="subscriptions_charges_list", responses=ChargeItemSerializer(many=True)
    )
    def get(self, request, subscription_id: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ChargeItemSerializer(page, many=True).data)
