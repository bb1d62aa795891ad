from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

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
    path("api/v1/auth/token", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/v1/auth/token/refresh", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("analytics/", include("watcher.analytics_urls")),
    path("", include("watcher.urls")),
]

if settings.DEBUG:  # pragma: no cover
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
