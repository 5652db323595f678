"""Race control's decisions on the wire: part of the wire contract (`races.wire`
re-exports every name here), kept in its own module so `races/wire.py` stays readable."""

from __future__ import annotations

from collections.abc import Mapping

# ---- race control's decisions (organizer -> relay, on the control exchange) -------------
#
# An organizer's decision about one athlete travels as ONE message to the relay, which
# alone owns race state: `{"type": "decision", "slug", "athlete_id", "id", "kind",
# "reason", "finish_s", "by", "at"}`. It goes on the relays' control exchange (not the
# race's fanout: that carries the position contract other consumers bind to, and its
# relay queue is gone once the race is over, when results corrections still happen).
# Applying one is idempotent (it SETS the athlete's decision; `undo` clears it), so a
# relay that re-applies a batch after a failover ends in the same state. The athlete's
# public form carries the active decision as `decision` (DECISION_PUBLIC_KEYS plus `was`,
# the tracked state to return to on undo), or null.

DECISION = "decision"
DECISION_KINDS = ("dns", "dnf", "finish_time", "undo")
# Not `by`: who decided is race control's business (AthleteDecision), not the public's.
DECISION_PUBLIC_KEYS = ("id", "kind", "reason", "finish_s", "at")


def decision_message(
    *,
    slug: str,
    athlete_id: int,
    id: int,
    kind: str,
    reason: str = "",
    finish_s: float | None = None,
    by: str = "",
    at: str | None = None,
) -> dict:
    """A race-control decision for the relay (see above); `finish_s` for `finish_time`."""
    if kind not in DECISION_KINDS:
        raise ValueError(f"unknown decision {kind!r}; expected one of {DECISION_KINDS}")
    if kind == "finish_time" and (finish_s is None or finish_s <= 0):
        raise ValueError("a finish time correction needs finish_s > 0")
    return {
        "type": DECISION,
        "slug": slug,
        "athlete_id": athlete_id,
        "id": id,
        "kind": kind,
        "reason": reason,
        "finish_s": finish_s,
        "by": by,
        "at": at,
    }


def is_decision(message: Mapping) -> bool:
    """Whether a control-exchange message is a decision (else a status notice)."""
    return message.get("type") == DECISION
