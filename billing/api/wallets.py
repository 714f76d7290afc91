"""A customer's wallet over the API: grants, balances and the ledger (docs/api.md "Customers,
subscriptions, wallets")."""

from __future__ import annotations

from djmoney.money import Money
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.fields import (
    AssetCode,
    AwareDateTimeField,
    ClientId,
    CurrencyCode,
    DecimalString,
    WholeNumber,
    decimal_str,
)
from billing.api.idempotency import idempotency_key, idempotent
from billing.selectors.catalog import currency_exists
from billing.selectors.customers import customer_get
from billing.services.grants import customer_grant_create
from core.errors import NotFound, ValidationFailed
from core.text import plain
from wallets.models import Grant, LedgerTransaction
from wallets.selectors import wallet_balances, wallet_grants, wallet_transactions
from wallets.services import grant_void


class MoneySerializer(serializers.Serializer):
    amount = DecimalString(allow_zero=True)
    currency = CurrencyCode()


class GrantInputSerializer(serializers.Serializer):
    id = ClientId(required=False)
    asset = AssetCode()
    amount = DecimalString()
    purpose = serializers.ChoiceField(choices=["paid", "promotional"], default="paid")
    priority = WholeNumber(min_value=0, max_value=1_000_000, default=10)
    expires_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    meters = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        default=None,
        max_length=100,
    )
    cost = MoneySerializer(required=False, allow_null=True, default=None)
    reference = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


def grant_json(grant: Grant, customer_external_id: str) -> dict:
    return {
        "id": grant.pk,
        "customer": customer_external_id,
        "asset": grant.asset_id,
        "amount": decimal_str(grant.amount),
        "remaining": decimal_str(grant.remaining),
        "held": decimal_str(grant.held),
        "purpose": grant.purpose,
        "priority": grant.priority,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "meters": grant.meters,
        "cost": (
            {
                "amount": plain(grant.cost.amount),
                "currency": str(grant.cost.currency),
            }
            if grant.cost is not None
            else None
        ),
        "reference": grant.reference,
        "status": grant.status,
        "created_at": grant.created_at.isoformat(),
    }


class GrantSerializer(serializers.Serializer):
    """Output shape of a grant (for the schema)."""

    id = serializers.CharField()
    customer = serializers.CharField()
    asset = serializers.CharField()
    amount = DecimalString()
    remaining = DecimalString(allow_zero=True)
    held = DecimalString(allow_zero=True)
    purpose = serializers.CharField()
    priority = serializers.IntegerField()
    expires_at = serializers.DateTimeField(allow_null=True)
    meters = serializers.ListField(child=serializers.CharField(), allow_null=True)
    cost = MoneySerializer(allow_null=True)
    reference = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class CustomerGrantsView(generics.GenericAPIView):
    serializer_class = GrantSerializer

    def get_queryset(self):
        customer = customer_get(external_id=self.kwargs["external_id"])
        return wallet_grants(wallet_id=customer.wallet_id)

    @extend_schema(operation_id="customers_grants_list", responses=GrantSerializer(many=True))
    def get(self, request, external_id: str):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([grant_json(g, external_id) for g in page])

    @extend_schema(request=GrantInputSerializer, responses={201: GrantSerializer})
    def post(self, request, external_id: str):
        client_id = request.data.get("id") if isinstance(request.data, dict) else None

        def create() -> Response:
            customer = customer_get(external_id=external_id)
            data = GrantInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            cost = None
            if values["cost"] is not None:
                currency = values["cost"]["currency"]
                if not currency_exists(code=currency):
                    raise ValidationFailed(
                        "cost.currency must be an ISO 4217 currency.",
                        errors={"cost.currency": ["Unknown currency."]},
                    )
                cost = Money(values["cost"]["amount"], currency)
            grant = customer_grant_create(
                customer=customer,
                asset=values["asset"],
                amount=values["amount"],
                purpose=values["purpose"],
                priority=values["priority"],
                expires_at=values["expires_at"],
                meters=values["meters"],
                cost=cost,
                reference=values["reference"],
                grant_id=values.get("id"),
            )
            return Response(grant_json(grant, external_id), status=status.HTTP_201_CREATED)

        return idempotent(
            request, scope="grants", key=idempotency_key(request, client_id), handler=create
        )


class GrantVoidView(generics.GenericAPIView):
    serializer_class = GrantSerializer

    @extend_schema(request=None, responses={200: GrantSerializer})
    def post(self, request, grant_id: str):
        def void() -> Response:
            grant = Grant.objects.filter(pk=grant_id).first()
            if grant is None:
                raise NotFound(f"Unknown grant '{grant_id}'.")
            customer = getattr(grant.wallet, "customer", None)
            voided = grant_void(grant_id=grant_id, reason="voided over the API")
            return Response(grant_json(voided, customer.external_id if customer else ""))

        return idempotent(request, scope="grant-void", key=idempotency_key(request), handler=void)


class BalanceSerializer(serializers.Serializer):
    asset = serializers.CharField()
    posted = DecimalString(signed=True)
    held = DecimalString(allow_zero=True)
    available = DecimalString(signed=True)
    debt = DecimalString(allow_zero=True)


class WalletGrantSerializer(serializers.Serializer):
    id = serializers.CharField()
    asset = serializers.CharField()
    purpose = serializers.CharField()
    priority = serializers.IntegerField()
    remaining = DecimalString(allow_zero=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class WalletSerializer(serializers.Serializer):
    customer = serializers.CharField()
    balances = BalanceSerializer(many=True)
    grants = WalletGrantSerializer(many=True)


class CustomerWalletView(generics.GenericAPIView):
    serializer_class = WalletSerializer
    pagination_class = None

    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        balances = wallet_balances(wallet_id=customer.wallet_id)
        grants = wallet_grants(wallet_id=customer.wallet_id, active_only=True).filter(
            remaining__gt=0
        )
        return Response(
            {
                "customer": customer.external_id,
                "balances": [
                    {
                        "asset": b.asset,
                        "posted": decimal_str(b.posted),
                        "held": decimal_str(b.held),
                        "available": decimal_str(b.available),
                        "debt": decimal_str(b.debt),
                    }
                    for b in balances
                ],
                "grants": [
                    {
                        "id": g.pk,
                        "asset": g.asset_id,
                        "purpose": g.purpose,
                        "priority": g.priority,
                        "remaining": decimal_str(g.remaining),
                        "held": decimal_str(g.held),
                        "expires_at": g.expires_at.isoformat() if g.expires_at else None,
                        "meters": g.meters,
                    }
                    for g in grants
                ],
            }
        )


class EntrySerializer(serializers.Serializer):
    asset = serializers.CharField()
    amount = DecimalString(signed=True)
    grant = serializers.CharField(allow_null=True)


class TransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    created_at = serializers.DateTimeField()
    reference = serializers.CharField()
    description = serializers.CharField()
    reverses = serializers.IntegerField(allow_null=True)
    entries = EntrySerializer(many=True)


def transaction_json(txn: LedgerTransaction, wallet_id: int) -> dict:
    """A transaction as the wallet sees it: only the entries on the wallet's accounts."""
    return {
        "id": txn.pk,
        "kind": txn.kind,
        "created_at": txn.created_at.isoformat(),
        "reference": txn.reference,
        "description": txn.description,
        "reverses": txn.reverses_id,
        "entries": [
            {"asset": e.asset_id, "amount": decimal_str(e.amount), "grant": e.grant_id}
            for e in txn.entries.all()
            if e.account.wallet_id == wallet_id
        ],
    }


class CustomerTransactionsView(generics.GenericAPIView):
    serializer_class = TransactionSerializer

    @extend_schema(
        operation_id="customers_transactions_list", responses=TransactionSerializer(many=True)
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        query = wallet_transactions(wallet_id=customer.wallet_id).prefetch_related(
            "entries__account"
        )
        page = self.paginate_queryset(query)
        return self.get_paginated_response([transaction_json(t, customer.wallet_id) for t in page])
