"""WebSocket URLs (see races/spectators/sockets.py)."""

from django.urls import path

from races.spectators.sockets import RaceListSocket, RaceSocket, SeedSocket

websocket_urlpatterns = [
    path("ws/races/", RaceListSocket()),
    path("ws/races/<slug:slug>/", RaceSocket()),
    path("ws", SeedSocket()),
]
