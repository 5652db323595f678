"""Tracker ingest: real athletes' phones and GPS devices feed a tracked race.

`views` (the `/ingest/` endpoints, one per app format) -> `fixes` (each app's format read
into one Fix) -> `ingest` (device token, rate, race checks, publish with confirms into
the race's fanout, metrics) -> the relay, as for a simulated athlete. `contract` builds
the seq-less event; `admin` shows tokens, setup URLs and QR codes; `recordings` joins
an athlete's GPX recording to a race after the fact.
"""
