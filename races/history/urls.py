"""The history's pages. Its JSON endpoints are routed by `races.history.openapi` (ninja),
whose url names (`api:results_csv`, `api:athlete_gpx`...) templates link to."""

from django.urls import path

from races.history import views

urlpatterns = [
    path("races/<slug:slug>/results/", views.results_page, name="race-results"),
    path("races/<slug:slug>/analysis/", views.analysis_page, name="race-analysis"),
]
