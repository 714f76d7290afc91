from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmIView(APIView):
    """The calling key's name and scopes: lets an integrator check a key before using it."""

    read_scope = None  # any valid key

    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "name": serializers.CharField(),
                "prefix": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        key = request.auth
        return Response({"name": key.name, "prefix": key.prefix, "scopes": key.scopes})
