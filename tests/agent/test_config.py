"""Agent settings: command line over environment over the YAML file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.agent.config import argument_parser, load_config
from watcher.agent.engine import site_url


def cli(*args: str) -> dict[str, object]:
    options = vars(argument_parser().parse_args(["run", *args]))
    options.pop("mode")
    return options


def test_command_line_over_environment_over_file(tmp_path: Path) -> None:
    file = tmp_path / "agent.yaml"
    file.write_text(
        "server: http://file:8000\napi_key: wa_file\nip: 10.0.0.1\nidle_exit: 7\n"
        "sites:\n  ozon: http://127.0.0.1:9001/ozon\n"
        "hooks:\n  reboot_modem: /usr/local/bin/reboot-modem\n"
    )
    environ = {"WATCHER_AGENT_API_KEY": "wa_env", "WATCHER_AGENT_IP": "10.0.0.2",
               "WATCHER_AGENT_FAST": "1"}  # fmt: skip
    config = load_config(cli("--config", str(file), "--ip", "10.0.0.3"), environ)
    assert (config.server, config.api_key, config.ip) == ("http://file:8000", "wa_env", "10.0.0.3")
    assert config.idle_exit == 7.0 and config.fast is True and config.scale == 0.01
    assert config.sites == {"ozon": "http://127.0.0.1:9001/ozon"}
    assert config.hooks == {"reboot_modem": "/usr/local/bin/reboot-modem"}
    env_sites = load_config(
        {}, {**environ, "WATCHER_AGENT_SERVER": "http://s", "WATCHER_AGENT_SITES": "ozon=http://o"}
    )
    assert env_sites.sites == {"ozon": "http://o"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "--server"),
        ({"server": "http://s"}, "--api-key"),
        ({"server": "ftp://s", "api_key": "k"}, "http(s)"),
        ({"server": "http://s", "api_key": "k", "sites": ["amazon=http://a"]}, "amazon"),
        ({"server": "http://s", "api_key": "k", "sites": ["ozon"]}, "MARKETPLACE=BASE_URL"),
    ],
)
def test_bad_settings_are_refused_clearly(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(options, {})


def test_site_sends_a_task_url_path_to_another_host() -> None:
    sites = {"ozon": "http://127.0.0.1:9001/ozon"}
    assert (
        site_url("https://www.ozon.ru/product/42/", "ozon", sites)
        == "http://127.0.0.1:9001/ozon/product/42/"
    )
    url = "https://market.yandex.ru/product/7?sku=1"
    assert site_url(url, "yandex_market", sites) == url
