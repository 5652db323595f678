from django.urls import path

from races.history import api, views

urlpatterns = [
    # Before the spectators' URLs: with ?at= this is the history's, without it the live one.
    path("api/races/<slug:slug>/leaderboard", api.leaderboard, name="api-leaderboard"),
    path("api/races/<slug:slug>/results", api.results, name="api-results"),
    path("api/races/<slug:slug>/results.csv", api.results_csv, name="api-results-csv"),
    path(
        "api/races/<slug:slug>/athletes/<str:bib>/track.gpx",
        api.athlete_gpx,
        name="api-athlete-gpx",
    ),
    path("races/<slug:slug>/results/", views.results_page, name="race-results"),
]
