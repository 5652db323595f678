"""The relay's per-frame writes, in bulk SQL rather than through `bulk_create`.

Measured on the development machine (1,000 positions and 1,000 athlete states a frame,
PostgreSQL, a busy machine): Django's `bulk_create` took 1.2-2 s per frame, most of it
building model instances and escaping JSON inside arrays; `executemany` 250-500 ms;
COPY 20 ms for the positions. So big frames on PostgreSQL go through COPY (the athlete
states through a temporary table, to upsert them); small frames, and SQLite (embedded
mode), through multi-row `INSERT ... ON CONFLICT`, one round trip each, which both
databases understand. Call these inside a transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, connection, transaction

from races import wire
from races.models import LiveAthlete, LiveRace, Position

POSITION_COLUMNS = (
    "race_id, athlete_id, seq, time, latitude, longitude, elevation, distance_m, "
    "speed_mps, event, frame"
)
LIVE_COLUMNS = "athlete_id, race_id, seq, frame, state"
LIVE_UPDATE = "seq = excluded.seq, frame = excluded.frame, state = excluded.state"
# Up to this many rows go in one multi-row INSERT (one round trip; SQLite allows 32,766
# parameters); above it PostgreSQL gets COPY.
SMALL_BATCH = 200


def insert_positions(rows: Sequence[tuple]) -> int:
    """Rows in POSITION_COLUMNS order; a (race, seq) already stored is skipped.

    Returns how many rows were inserted (the rest were stored before)."""
    if not rows:
        return 0
    table = Position._meta.db_table
    if connection.vendor == "postgresql" and len(rows) > SMALL_BATCH:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.cursor.copy(f"COPY {table} ({POSITION_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return len(rows)
        except IntegrityError:
            pass  # a redelivered position: insert with ON CONFLICT, skipping the known ones
    adapt = connection.ops.adapt_datetimefield_value
    rows = [(*row[:3], adapt(row[3]), *row[4:]) for row in rows]
    return _insert(table, POSITION_COLUMNS, 11, rows, "ON CONFLICT (race_id, seq) DO NOTHING")


def upsert_live_athletes(rows: Sequence[tuple[int, int, int, int, dict]]) -> None:
    """Rows (athlete_id, race_id, seq, frame, state); the state replaces the stored one."""
    if not rows:
        return
    table = LiveAthlete._meta.db_table
    conflict = f"ON CONFLICT (athlete_id) DO UPDATE SET {LIVE_UPDATE}"
    if connection.vendor == "postgresql" and len(rows) > SMALL_BATCH:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS relay_live_in (athlete_id bigint, "
                "race_id bigint, seq bigint, frame bigint, state jsonb) ON COMMIT DELETE ROWS"
            )
            with cursor.cursor.copy(f"COPY relay_live_in ({LIVE_COLUMNS}) FROM STDIN") as copy:
                for athlete_id, race_id, seq, frame, state in rows:
                    copy.write_row((athlete_id, race_id, seq, frame, wire.dumps(state)))
            cursor.execute(
                f"INSERT INTO {table} ({LIVE_COLUMNS}) SELECT {LIVE_COLUMNS} FROM relay_live_in "
                + conflict
            )
        return
    encoded = [(a, r, s, f, wire.dumps(state)) for a, r, s, f, state in rows]
    _insert(table, LIVE_COLUMNS, 5, encoded, conflict)


def _insert(table: str, columns: str, width: int, rows: list[tuple], conflict: str) -> int:
    """Multi-row INSERT statements: one round trip per SMALL_BATCH rows; rows written."""
    one = "(" + ", ".join(["%s"] * width) + ")"
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), SMALL_BATCH):
            chunk = rows[start : start + SMALL_BATCH]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * len(chunk))} "
                + conflict,
                [value for row in chunk for value in row],
            )
            written += max(cursor.rowcount, 0)
    return written


def upsert_live_race(race_id: int, frame: int, clock_s: float | None, now) -> None:
    table = LiveRace._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (race_id, frame, clock_s, updated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (race_id) DO UPDATE SET frame = excluded.frame, "
            "clock_s = excluded.clock_s, updated_at = excluded.updated_at",
            [race_id, frame, clock_s, connection.ops.adapt_datetimefield_value(now)],
        )
