"""ASGI entry: HTTP goes to Django in WSGI mode on a thread pool, WebSockets to Channels.

Every view and middleware here is synchronous: under Django's ASGI handler a request would hop
between the event loop and a thread for each middleware hook; through config/wsgi_bridge.py it
hops once, and the event loop keeps serving the WebSockets.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application

django_wsgi_app = get_wsgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from config.wsgi_bridge import WSGIBridge  # noqa: E402

# Import the URLconf (views, services, the parser's rules) while the worker starts, not on the
# threads of its first requests.
importlib.import_module(settings.ROOT_URLCONF)

# The Origin check and the session user are per route (config/routing.py): agents are not
# browsers; they send no Origin and no cookie.
application = ProtocolTypeRouter(
    {
        "http": WSGIBridge(
            django_wsgi_app,
            threads=settings.WATCHER_HTTP_THREADS,
            spool_max=settings.FILE_UPLOAD_MAX_MEMORY_SIZE,
            limits=settings.WATCHER_BODY_LIMITS,
            authenticate=import_string(settings.WATCHER_BODY_AUTHENTICATOR),
        ),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# One event loop holds every socket, and each collection of the older generations pauses them
# all: freeze what start-up made, and collect the middle generation 10 times less often (fewer,
# longer pauses). Python 3.14's incremental collector keeps its own thresholds (bench/README.md).
gc.collect()
gc.freeze()
if sys.version_info < (3, 14):
    young, _, oldest = gc.get_threshold()
    gc.set_threshold(young, 100, oldest)
