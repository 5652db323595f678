from django.contrib import admin
from django.urls import include, path

from races.history.openapi import api
from races.operations import health

admin.site.site_header = "RaceWeb organizers"
admin.site.site_title = "RaceWeb admin"
admin.site.index_title = "Races and start lists"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("", include("races.organizer.urls")),
    path("ingest/", include("races.trackers.urls")),  # tracker devices (no session, no CSRF)
    path("api/", api.urls),  # every JSON endpoint, with its OpenAPI schema (/api/openapi.json)
    path("", include("races.history.urls")),
    path("", include("races.spectators.urls")),
]
