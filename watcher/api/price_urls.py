"""The analysts' price-history API, under /api/v1/prices/."""

from __future__ import annotations

from django.urls import path

from watcher.api import prices

app_name = "prices-api"

urlpatterns = [
    path("", prices.PriceListView.as_view(), name="list"),
    path("series", prices.PriceSeriesView.as_view(), name="series"),
]
