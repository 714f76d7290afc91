"""`/api/v1/assets`: ISO currencies exist already; custom assets are created here."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from billing.api.fields import AssetCode, CurrencyCode, DecimalString, WholeNumber
from billing.api.idempotency import idempotency_key, idempotent
from billing.api.pagination import ApiCursorPagination
from billing.selectors.catalog import asset_find, asset_list
from core.errors import NotFound
from core.text import plain
from wallets.models import Asset
from wallets.services.assets import asset_create


class AssetRateSerializer(serializers.Serializer):
    currency = CurrencyCode()
    rate = DecimalString(places=None)


class AssetSerializer(serializers.Serializer):
    code = AssetCode()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    decimals = WholeNumber(min_value=0, max_value=12, default=0)
    rates = AssetRateSerializer(many=True, required=False, default=list)
    kind = serializers.CharField(read_only=True)

    def to_representation(self, asset: Asset) -> dict:
        return {
            "code": asset.code,
            "name": asset.name,
            "kind": asset.kind,
            "decimals": asset.decimals,
            "rates": [
                {"currency": r.currency_id, "rate": plain(r.rate)} for r in asset.rates.all()
            ],
        }


class AssetPagination(ApiCursorPagination):
    ordering = "code"


class AssetListView(generics.GenericAPIView):
    serializer_class = AssetSerializer
    pagination_class = AssetPagination

    def get_queryset(self):
        return asset_list(kind=self.request.query_params.get("kind"))

    @extend_schema(operation_id="assets_list", responses=AssetSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AssetSerializer(page, many=True).data)

    @extend_schema(request=AssetSerializer, responses={201: AssetSerializer})
    def post(self, request):
        def create() -> Response:
            data = AssetSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            asset = asset_create(
                code=data.validated_data["code"],
                name=data.validated_data.get("name") or data.validated_data["code"],
                decimals=data.validated_data["decimals"],
                rates=data.validated_data["rates"],
            )
            return Response(AssetSerializer(asset).data, status=status.HTTP_201_CREATED)

        return idempotent(request, scope="assets", key=idempotency_key(request), handler=create)


class AssetDetailView(generics.GenericAPIView):
    serializer_class = AssetSerializer

    def get(self, request, code: str):
        asset = asset_find(code=code)
        if asset is None:
            raise NotFound(f"Unknown asset '{code}'.")
        return Response(AssetSerializer(asset).data)
