from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from alerts.api import views

app_name = "alerts-api"

router = SimpleRouter()
router.register("rules", views.AlertRuleViewSet, basename="rules")

urlpatterns = [
    path("", views.AlertListView.as_view(), name="list"),
    path("<int:pk>/", views.AlertDetailView.as_view(), name="detail"),
    path("<int:pk>/acknowledge", views.AcknowledgeView.as_view(), name="acknowledge"),
    *router.urls,
]
