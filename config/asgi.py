"""ASGI entry: HTTP goes to Django in WSGI mode on a thread pool, WebSockets to Channels.

Every view and middleware of this project is synchronous. Under Django's own ASGI handler each
request would cross between the event loop and a worker thread for every middleware hook and
again for the view (``MiddlewareMixin`` wraps each hook in ``sync_to_async``): about twenty
hand-offs per request, which cost more CPU than our views themselves. Here a request crosses
once (config/wsgi_bridge.py): Django's WSGI handler, middleware, view and all, runs on one of
``WATCHER_HTTP_THREADS`` threads, while the event loop keeps serving the WebSockets. Tests use
the same WSGI handler through Django's test client. bench/dispatch.py measures the result.
"""

from __future__ import annotations

import gc
import importlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application

django_wsgi_app = get_wsgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from config.wsgi_bridge import WSGIBridge  # noqa: E402

# Import the URLconf (views, services, the parser's rules) while the worker starts, not during
# the first requests: without bytecode caches that took 0.7 s of CPU per worker, on the request
# threads of the first reports (bench/dispatch.py under py-spy).
importlib.import_module(settings.ROOT_URLCONF)

# The Origin check and the session user are per route (config/routing.py): agents are not
# browsers; they send no Origin and no cookie.
application = ProtocolTypeRouter(
    {
        "http": WSGIBridge(
            django_wsgi_app,
            threads=settings.WATCHER_HTTP_THREADS,
            spool_max=settings.FILE_UPLOAD_MAX_MEMORY_SIZE,
        ),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# The garbage collector, set for a process that holds many sockets: each collection of the
# middle or the oldest generation stops the event loop, and every socket on it, while it runs.
# - gc.freeze(): what start-up made (Django, DRF, the URLconf, the parser's rules: some 120,000
#   objects) lives as long as the process; frozen, full collections no longer walk it again.
# - Middle-generation collections 10 times rarer (100 young ones each, not 10): with 1,000
#   agent sockets, each socket's message leaves the loop's machinery for its next message
#   (tasks, coroutines, futures), and every middle collection walked it again: 18 collections
#   of about 2 ms per 1,000 command round trips, 2-3 of 15-28 ms now, well below the full
#   collections' 75-200 ms, which come about 3 times rarer too (none in 1,000 round trips, where
#   there was one). The server's CPU per round trip fell 4-10 % and the round trip's p99 from
#   5.4-6.8 to 5.1-6.2 ms, for 1-2 MB more memory (bench/ws.py, run with and without
#   --gc-python-defaults, in turns).
# Objects made after start-up, sockets included, are collected as before.
gc.collect()
gc.freeze()
gc.set_threshold(700, 100, 10)
