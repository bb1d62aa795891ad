from __future__ import annotations

from django.urls import path

from office.api import views

app_name = "office-api"

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("agents", views.AgentListView.as_view(), name="agents"),
]
