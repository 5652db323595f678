"""Race control's URLs (staff only; see races.organizer.race_control)."""

from django.urls import path

from races.organizer import race_control

urlpatterns = [
    path("control/<slug:slug>/", race_control.race_control, name="race-control"),
    path(
        "control/<slug:slug>/alerts", race_control.race_control_alerts, name="race-control-alerts"
    ),
    path(
        "control/<slug:slug>/decide", race_control.race_control_decide, name="race-control-decide"
    ),
]
