"""The organizer's side: courses (GPX), start lists, the race lifecycle, the admin."""
