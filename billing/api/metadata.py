"""What ``OPTIONS`` answers on every API route: the view's name and description and the media
types it renders and parses, with DRF's ``Allow`` header listing its methods.

DRF's default (``SimpleMetadata``) also describes the fields of the view's serializer, which
fails on views that parse their body without one (batches, reversal, holds...); the request
and response shapes are in the OpenAPI document (``/api/v1/schema``) instead."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import BaseMetadata


class ApiMetadata(BaseMetadata):
    def determine_metadata(self, request: Any, view: Any) -> dict[str, Any]:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
