"""The history's pages. Its JSON endpoints are routed by `races.history.openapi` (ninja);
the names here let templates link to them."""

from django.urls import path

from races.history import api, views

urlpatterns = [
    path("races/<slug:slug>/results/", views.results_page, name="race-results"),
    path("races/<slug:slug>/analysis/", views.analysis_page, name="race-analysis"),
    path("api/races/<slug:slug>/results.csv", api.results_csv, name="api-results-csv"),
    path(
        "api/races/<slug:slug>/athletes/<str:bib>/track.gpx",
        api.athlete_gpx,
        name="api-athlete-gpx",
    ),
]
