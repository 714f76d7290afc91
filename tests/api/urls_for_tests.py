"""A URL conf for tests only: the project's URLs (config.urls, with its error handlers) plus a
few views that exercise what no production endpoint exercises yet (bodies, domain errors,
pagination over known rows, scopes). Used with ``@pytest.mark.urls("tests.api.urls_for_tests")``;
nothing here is reachable in production."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from billing.models import ApiKey
from config import urls as project_urls
from wallets.errors import InsufficientFunds

handler404 = project_urls.handler404
handler500 = project_urls.handler500


class TierSerializer(serializers.Serializer):
    up_to = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    unit_price = serializers.DecimalField(max_digits=20, decimal_places=6)


class PriceSerializer(serializers.Serializer):
    meter = serializers.CharField(max_length=10)
    tiers = TierSerializer(many=True)


class EchoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=5)
    prices = PriceSerializer(many=True)
    tags = serializers.ListField(child=serializers.IntegerField(), required=False)


class EchoView(APIView):
    """POST validates EchoSerializer and echoes it. Reads: `read`; writes: `manage`."""

    def get(self, request):
        return Response({"method": "GET", "principal": str(request.user)})

    def post(self, request):
        serializer = EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.data, status=201)


class EventsScopeView(APIView):
    read_scope = ("events", "read")
    write_scope = "events"

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True}, status=201)


class DomainErrorView(APIView):
    def post(self, request):
        raise InsufficientFunds(
            "The wallet cannot pay 1.5 USD.",
            extra={"event": {"id": "evt_1", "status": "declined"}},
        )


class DjangoValidationErrorView(APIView):
    def post(self, request):
        raise DjangoValidationError({"email": ["Enter a valid email address."]})


class RenameKeyView(APIView):
    """Writes ``name`` straight to the database without validation, as a buggy service would:
    a name longer than the column raises DataError."""

    def post(self, request):
        with transaction.atomic():
            ApiKey.objects.filter(pk=request.auth.pk).update(name=request.data["name"])
        return Response({"ok": True})


class CrashView(APIView):
    def get(self, request):
        raise RuntimeError("a bug")


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name"]


class ApiKeyListView(ListAPIView):
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.all()


class TwoPerMinuteThrottle(UserRateThrottle):
    scope = "tests"
    rate = "2/min"


class ThrottledView(APIView):
    throttle_classes = [TwoPerMinuteThrottle]

    def get(self, request):
        return Response({"user_pk": request.user.pk})


urlpatterns = [
    path("api/v1/_tests/echo", EchoView.as_view()),
    path("api/v1/_tests/events-scope", EventsScopeView.as_view()),
    path("api/v1/_tests/domain-error", DomainErrorView.as_view()),
    path("api/v1/_tests/django-validation-error", DjangoValidationErrorView.as_view()),
    path("api/v1/_tests/rename-key", RenameKeyView.as_view()),
    path("api/v1/_tests/crash", CrashView.as_view()),
    path("api/v1/_tests/keys", ApiKeyListView.as_view()),
    path("api/v1/_tests/throttled", ThrottledView.as_view()),
    *project_urls.urlpatterns,
]
