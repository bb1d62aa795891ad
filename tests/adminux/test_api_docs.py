"""/api/docs/ works offline: its assets come from the project; endpoints are grouped by tag."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_docs_page_loads_every_asset_from_the_project(client: Client) -> None:
    html = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets), assets
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), asset  # no CDN
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset


def test_endpoints_are_grouped_by_tag_and_the_three_schemes_explained(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    tags = {
        (method.upper(), path): operation["tags"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert tags[("GET", "/api/v1/watcher/tasks/next")] == ["tasks"]
    assert tags[("POST", "/api/v1/watcher/agents/heartbeat")] == ["agents"]
    assert tags[("POST", "/api/v1/watcher/agents/{agent_id}/command")] == ["commands"]
    assert tags[("GET", "/api/v1/watcher/health")] == ["health"]
    assert tags[("POST", "/api/v1/auth/token")] == ["auth"]
    assert all(tag != ["v1"] for tag in tags.values())
    assert [t["name"] for t in schema["tags"]][:3] == ["tasks", "agents", "commands"]
    for scheme in ("agentApiKey", "jwtAuth", "cookieAuth"):
        assert scheme in schema["components"]["securitySchemes"]
        assert f"(`{scheme}`)" in schema["info"]["description"]
