"""The relay: intake of position events, the race state, the live store, bulk writes and
the broker objects of a race."""
