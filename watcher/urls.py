from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from watcher import views

app_name = "watcher"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("live/agents/", views.live_agents, name="live-agents"),
    path("live/agents/<uuid:agent_id>/", views.live_agent_detail, name="live-agent"),
    path("live/agents/<uuid:agent_id>/clear-panic", views.clear_panic, name="clear-panic"),
    path(
        "live/agents/<uuid:agent_id>/blocks/<int:block_id>/lift",
        views.unblock_ip,
        name="unblock-ip",
    ),
    path("metrics", views.metrics, name="metrics"),
]
