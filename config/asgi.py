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
import sys

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
# - Middle-generation collections 10 times rarer (after 100 young ones, not 10): with 1,000
#   agent sockets, each socket's message leaves the loop's machinery for its next message
#   (tasks, coroutines, futures), and every middle collection walked it again. Fewer, longer
#   pauses: per 1,000 command round trips, 2-3 middle collections of 14-30 ms instead of 18 of
#   about 2 ms, and the full collections (150-200 ms) about 3 times rarer (in each run of 1,000
#   round trips one met a full collection, now none did: the longest took 20-24 ms instead of
#   158-178); 90-100 ms of pauses in all instead of 225-260, the server's CPU per round trip
#   4-10 % lower, for 1-2 MB more memory (bench/ws.py, run with and without
#   --gc-python-defaults, in turns: WebSocket and command traffic). Cyclic garbage waits that
#   much longer for its collection. Python 3.14's incremental collector reads the thresholds
#   differently; there they stay Python's.
# Objects made after start-up, sockets included, are still collected, the middle and oldest
# generations less often.
gc.collect()
gc.freeze()
if sys.version_info < (3, 14):
    young, _, oldest = gc.get_threshold()
    gc.set_threshold(young, 100, oldest)
