"""The web server: uvicorn with Watcher's options, in one place.

    python -m config.server [uvicorn option …]

The Procfile, the image, docker-compose.yml, CI's smoke run, the end-to-end tests and the
benches all start the web server this way. Options on the command line come after these and
win (``--port 9000``, ``--workers 4``, ``--forwarded-allow-ips …``); ``UVICORN_<OPTION>``
variables still work for the options not set here.

- ``config.asgi:application``: HTTP through Django on a thread pool, WebSockets through Channels.
- ``--proxy-headers``: ``X-Forwarded-For`` / ``-Proto``, honoured only from
  ``FORWARDED_ALLOW_IPS`` (docs/production.md, "Reverse proxy").
- ``--no-access-log``: its INFO lines would print the agents' ``api_key`` query parameter.
- ``--ws websockets``: the implementation that pings idle sockets and drops dead peers, which
  agents on USB modems need (wsproto never pings).
- ``--ws-per-message-deflate false``: compression held two zlib streams per socket, about
  90 KB more per idle connection (144 KB against 55 KB then, bench/ws.py), for JSON messages of
  a few hundred bytes.
"""

from __future__ import annotations

import sys

APP = "config.asgi:application"
OPTIONS = (
    "--proxy-headers",
    "--no-access-log",
    "--ws",
    "websockets",
    "--ws-per-message-deflate",
    "false",
)


def command_line(argv: list[str]) -> list[str]:
    """uvicorn's arguments: the app, our options, then the caller's (the last value wins)."""
    return [APP, *OPTIONS, *argv]


def main(argv: list[str] | None = None) -> None:
    from uvicorn.main import main as uvicorn

    args = command_line(sys.argv[1:] if argv is None else argv)
    uvicorn.main(args=args, prog_name="python -m config.server")


if __name__ == "__main__":
    main()
