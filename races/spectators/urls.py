"""The spectators' pages. Their JSON endpoints (`races.spectators.api`) are routed, with
the OpenAPI schema, by `races.history.openapi` under /api/."""

from django.urls import path

from races.spectators import views

urlpatterns = [
    path("", views.race_list, name="race-list"),
    path("races/<slug:slug>/", views.race_detail, name="race-detail"),
    path("races/<slug:slug>/access", views.race_access, name="race-access"),
]
