from django.urls import path

from .views_meta import WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="api-whoami"),
]
