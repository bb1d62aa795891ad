from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Watcher"
admin.site.site_title = "Watcher"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/watcher/", include("watcher.api.urls")),
    path("api/v1/parser/", include("parser.api.urls")),
    path("api/v1/alerts/", include("alerts.api.urls")),
    path("api/v1/office/", include("office.api.urls")),
    path("office/", include("office.urls")),
    path("api/v1/prices/", include("watcher.api.price_urls")),
    path("api/v1/auth/", include("watcher.api.auth_urls")),  # throttled token views
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("analytics/", include("watcher.analytics_urls")),
    path("", include("watcher.urls")),
]

# JSON errors under /api/ (watcher.views); Django's own pages elsewhere.
handler400 = "watcher.views.bad_request"
handler403 = "watcher.views.permission_denied"
handler404 = "watcher.views.not_found"
handler500 = "watcher.views.server_error"

if settings.DEBUG:  # pragma: no cover
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
