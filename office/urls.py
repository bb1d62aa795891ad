from __future__ import annotations

from django.urls import path

from office import views

app_name = "office"

urlpatterns = [
    path("", views.office_dashboard, name="dashboard"),
]
