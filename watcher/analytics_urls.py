"""The analysts' pages, under /analytics/."""

from __future__ import annotations

from django.urls import path

from watcher import analytics

app_name = "analytics"

urlpatterns = [
    path("", analytics.gaps, name="gaps"),
    path("subscriptions/<int:subscription_id>/", analytics.comparison, name="comparison"),
]
