"""A race's results: overall, per gender and per category, with every split and leg pace.

Built from the relay's stored final state (`races.spectators.snapshots`), the same
athletes a spectator's last snapshot shows, so results never disagree with the board.
"""

from __future__ import annotations

from races import wire
from races.models import Race
from races.spectators import snapshots

DNS = "dns"


def legs(splits: list[dict]) -> list[dict]:
    """Each split with the leg that ends there: its length, time and pace."""
    out, distance, time = [], 0.0, 0.0
    for split in splits:
        length = split["distance_m"] - distance
        seconds = split["split_s"] - time
        out.append(
            {
                "name": split["name"],
                "distance_m": split["distance_m"],
                "split_s": split["split_s"],
                "leg_m": round(length, 1),
                "leg_s": round(seconds, 1),
                "leg_pace_s_per_km": round(seconds / (length / 1000.0), 1) if length > 0 else None,
            }
        )
        distance, time = split["distance_m"], split["split_s"]
    return out


def result_row(athlete: dict, race_over: bool) -> dict:
    """One athlete's result line (`status` "dns" for a finished race they never started)."""
    status = athlete["status"]
    if status == wire.NOT_STARTED and race_over:
        status = DNS
    splits = athlete.get("splits") or []
    last = splits[-1] if splits and status != wire.FINISHED else None
    return {
        "id": athlete["id"],
        "bib": athlete["bib"],
        "name": athlete["name"],
        "gender": athlete["gender"],
        "category": athlete["category"],
        "status": status,
        "rank": athlete["rank"] if status == wire.FINISHED else None,
        "rank_gender": athlete["rank_gender"] if status == wire.FINISHED else None,
        "rank_category": athlete["rank_category"] if status == wire.FINISHED else None,
        "finish_s": splits[-1]["split_s"] if status == wire.FINISHED and splits else None,
        "gap_s": athlete["gap_s"] if status == wire.FINISHED else None,
        "distance_m": athlete["distance_m"],
        "pace_s_per_km": athlete["pace_s_per_km"] if status == wire.FINISHED else None,
        "last_checkpoint": {"name": last["name"], "distance_m": last["distance_m"]}
        if last
        else None,
        "splits": legs(splits),
    }


def race_results(race: Race) -> dict:
    """The results document of `/api/races/<slug>/results`."""
    snapshot = snapshots.read_snapshot(race.slug)
    over = race.status in (Race.Status.FINISHED, Race.Status.STOPPED)
    rows = [result_row(a, over) for a in snapshot["athletes"]]
    checkpoints = [
        cp["name"] for cp in (snapshot["course"] or {}).get("checkpoints", [])
        if cp["kind"] != "start"
    ]  # fmt: skip
    by_gender: dict[str, list[int]] = {}
    by_category: dict[str, list[int]] = {}
    for row in rows:
        if row["status"] == wire.FINISHED:
            by_gender.setdefault(row["gender"], []).append(row["id"])
            if row["category"]:
                by_category.setdefault(row["category"], []).append(row["id"])
    return {
        "race": snapshot["race"],
        "final": over,
        "checkpoints": checkpoints,
        "results": rows,
        "by_gender": by_gender,
        "by_category": dict(sorted(by_category.items())),
    }
