"""The race data model, one module per role (see docs/ARCHITECTURE.md, "Models").

- `race`: what the organizer sets up (Race, Course, Checkpoint, Athlete);
- `live`: what the relay writes while a race runs (Position, LiveRace, LiveAthlete);
- `control`: race control (AthleteDecision, RaceAlerts);
- `ghosts`: ghost pacers the organizer adds to a race (Ghost);
- `access`: organizations and the audit trail (Organization, OrganizerMembership,
  RevokedSpectatorLabel, SpectatorConnection, OrganizerAction);
- `devices`: the athletes' tracker device tokens (DeviceToken).

Import from `races.models`; the split is for reading, not for callers.
"""

from races.models.access import (
    Organization,
    OrganizerAction,
    OrganizerMembership,
    RevokedSpectatorLabel,
    SpectatorConnection,
)
from races.models.control import AthleteDecision, RaceAlerts
from races.models.devices import DeviceToken
from races.models.ghosts import Ghost
from races.models.live import LiveAthlete, LiveRace, Position
from races.models.race import Athlete, Checkpoint, Course, Race, random_seed

__all__ = [
    "Athlete",
    "AthleteDecision",
    "Checkpoint",
    "Course",
    "DeviceToken",
    "Ghost",
    "LiveAthlete",
    "LiveRace",
    "Organization",
    "OrganizerAction",
    "OrganizerMembership",
    "Position",
    "Race",
    "RaceAlerts",
    "RevokedSpectatorLabel",
    "SpectatorConnection",
    "random_seed",
]
