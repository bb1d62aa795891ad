from __future__ import annotations

from django.urls import path

from watcher.api import views

app_name = "watcher-api"

urlpatterns = [
    path("tasks/next", views.NextTaskView.as_view(), name="tasks-next"),
    path("tasks/stats", views.TaskStatsView.as_view(), name="tasks-stats"),
    path("tasks/<uuid:task_id>/report", views.ReportView.as_view(), name="tasks-report"),
    path("agents", views.AgentListView.as_view(), name="agents"),
    path("agents/heartbeat", views.HeartbeatView.as_view(), name="agents-heartbeat"),
    path("agents/panic", views.PanicView.as_view(), name="agents-panic"),
    path("agents/<uuid:agent_id>", views.AgentDetailView.as_view(), name="agents-detail"),
    path("agents/<uuid:agent_id>/command", views.AgentCommandView.as_view(), name="agents-command"),
    path("agents/command", views.BroadcastCommandView.as_view(), name="agents-command-all"),
    path("config/emulation", views.EmulationConfigView.as_view(), name="config-emulation"),
    path("health", views.HealthView.as_view(), name="health"),
]
