"""After (and during) a race: the leaderboard at any instant, results, exports, analysis.

Outside `races.spectators` on purpose: it replays stored positions through the relay's
race state (`races.relay.race_setup`), which the spectators' side may not import.
"""
