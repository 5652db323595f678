"""The device endpoints (races.trackers.views), mounted under `/ingest/`."""

from django.urls import path

from races.trackers import views

urlpatterns = [
    path("osmand/", views.osmand, name="ingest-osmand"),
    path("owntracks/<str:token>/", views.owntracks, name="ingest-owntracks"),
    path("traccar/", views.traccar, name="ingest-traccar"),
]
