"""Geometry of the analysis page's inline SVG charts (the template draws them; no CDN)."""

from __future__ import annotations

WIDTH, HEIGHT, PAD = 640.0, 220.0, 36.0


def gained_bars(legs: list[dict]) -> dict:
    """One bar per leg: up (green) for time gained against the reference, down for lost."""
    values = [leg["gained_s"] or 0.0 for leg in legs]
    top = max([abs(v) for v in values] + [1.0])
    slot = (WIDTH - 2 * PAD) / max(len(legs), 1)
    middle = HEIGHT / 2
    bars = []
    for i, (leg, value) in enumerate(zip(legs, values, strict=True)):
        height = abs(value) / top * (middle - PAD)
        bars.append(
            {
                "x": round(PAD + i * slot + slot * 0.15, 1),
                "y": round(middle - height if value > 0 else middle, 1),
                "width": round(slot * 0.7, 1),
                "height": round(max(height, 1.0), 1),
                "label_x": round(PAD + (i + 0.5) * slot, 1),
                "value_y": round(middle - height - 6 if value > 0 else middle + height + 14, 1),
                "name": leg["name"],
                "value": value,
                "gained": value > 0,
                "text": f"{'+' if value > 0 else '-' if value < 0 else '±'}{_duration(abs(value))}",
            }
        )
    return {"width": WIDTH, "height": HEIGHT, "middle": middle, "bars": bars, "label_y": HEIGHT - 4}


def pace_bars(legs: list[dict], other: list[dict]) -> dict:
    """Pace per leg, the athlete's bar beside the reference's (lower is faster)."""
    theirs = {leg["name"]: leg for leg in other}
    paces = [leg["leg_pace_s_per_km"] or 0.0 for leg in legs]
    paces += [(theirs.get(leg["name"]) or {}).get("leg_pace_s_per_km") or 0.0 for leg in legs]
    top = max([*paces, 1.0])
    slot = (WIDTH - 2 * PAD) / max(len(legs), 1)
    base = HEIGHT - PAD
    groups = []
    for i, leg in enumerate(legs):
        pair = []
        for j, pace in enumerate(
            (leg["leg_pace_s_per_km"], (theirs.get(leg["name"]) or {}).get("leg_pace_s_per_km"))
        ):
            height = (pace or 0.0) / top * (base - PAD / 2)
            pair.append(
                {
                    "x": round(PAD + i * slot + slot * (0.12 + 0.38 * j), 1),
                    "y": round(base - height, 1),
                    "width": round(slot * 0.36, 1),
                    "height": round(height, 1),
                    "text": _duration(pace) if pace else "",
                }
            )
        groups.append(
            {"name": leg["name"], "label_x": round(PAD + (i + 0.5) * slot, 1), "bars": pair}
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "base": base,
        "groups": groups,
        "label_y": HEIGHT - 12,
    }


def distance_lines(series: list, other: list) -> dict:
    """Distance over race time for both athletes, as two SVG polylines."""
    end_t = max([p[0] for p in series + other] + [1.0])
    end_d = max([p[1] for p in series + other] + [1.0])

    def points(values: list) -> str:
        span_x, span_y = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
        return " ".join(
            f"{PAD + t / end_t * span_x:.1f},{HEIGHT - PAD - d / end_d * span_y:.1f}"
            for t, d in values
        )

    return {
        "width": WIDTH, "height": HEIGHT, "mine": points(series), "theirs": points(other),
        "end_km": round(end_d / 1000, 1), "end_time": _duration(end_t),
    }  # fmt: skip


def _duration(seconds: float) -> str:
    s = round(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
