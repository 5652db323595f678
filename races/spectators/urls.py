from django.urls import path

from races.spectators import api, views

urlpatterns = [
    path("", views.race_list, name="race-list"),
    path("races/<slug:slug>/", views.race_detail, name="race-detail"),
    path("races/<slug:slug>/access", views.race_access, name="race-access"),
    path("api/races/", api.race_list, name="api-race-list"),
    path("api/races/<slug:slug>/", api.race_detail, name="api-race-detail"),
    path("api/races/<slug:slug>/course.geojson", api.course_geojson, name="api-course"),
    path("api/races/<slug:slug>/leaderboard", api.leaderboard, name="api-leaderboard"),
    path("api/races/<slug:slug>/positions", api.positions, name="api-positions"),
    path(
        "api/races/<slug:slug>/athletes/<str:bib>/track",
        api.athlete_track,
        name="api-athlete-track",
    ),
]
