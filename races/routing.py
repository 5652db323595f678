"""WebSocket URLs (see races/consumers.py)."""

from django.urls import path

from races.consumers import RaceListSocket, RaceSocket, SeedSocket

websocket_urlpatterns = [
    path("ws/races/", RaceListSocket()),
    path("ws/races/<slug:slug>/", RaceSocket()),
    path("ws", SeedSocket()),
]
