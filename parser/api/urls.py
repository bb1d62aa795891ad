from __future__ import annotations

from django.urls import path

from parser.api import views

app_name = "parser-api"

urlpatterns = [
    path("jobs/report", views.JobReportView.as_view(), name="jobs-report"),
]
