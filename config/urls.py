from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("billing.api.urls")),
]

admin.site.site_header = "Billfold back office"
admin.site.site_title = "Billfold"
admin.site.index_title = "Billing operations"

handler404 = "billing.api.errors.api_not_found"
handler500 = "billing.api.errors.api_server_error"
