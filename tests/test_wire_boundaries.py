"""The wire contract's boundaries: one pure module, spelled once, and rooms that keep apart."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from races import wire

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative ones resolved naively)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_wire_imports_no_django_and_nothing_of_the_project():
    """The simulator and the bench use it without Django; it must stay plain Python."""
    code = (
        "import sys; import races.wire; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'channels', 'kombu')"
        " or (m.startswith('races.') and m != 'races.wire') or m.startswith('simulator')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "path", sorted((ROOT / "races" / "spectators").glob("*.py")), ids=lambda p: p.name
)
def test_the_spectators_side_never_imports_the_relay(path):
    relay = {m for m in imported_modules(path) if m.split(".")[:2] == ["races", "relay"]}
    assert relay == set(), f"{path.name} imports {sorted(relay)}"


NAME_SPELLINGS = re.compile(r"""f?["'](relay\.)?race-(\{|["'])|["']race\.\{""")


def test_race_names_are_spelled_in_the_wire_module_only():
    """`race-<slug>`, `relay.race-<slug>` and `race.<slug>` are built by races.wire."""
    offenders = []
    for folder in ("races", "simulator", "bench", "tests", "raceweb"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "races" / "wire.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if NAME_SPELLINGS.search(line) and not line.lstrip().startswith("NAME_SPELLINGS"):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_names():
    assert wire.exchange_name("vtr") == "race-vtr"
    assert wire.slug_of_exchange(wire.exchange_name("race-x")) == "race-x"
    assert wire.relay_queue_name("vtr") == "relay.race-vtr"
    assert wire.race_group("vtr") == "race.vtr"


def test_leaderboard_order_finished_running_not_started_dnf():
    athletes = [
        wire.public_athlete(id=1, bib="10", name="A", gender="f", category="", status=wire.DNF,
                            distance_m=900.0),
        wire.not_started_athlete(2, "2", "B", "m", ""),
        wire.public_athlete(id=3, bib="3", name="C", gender="f", category="", status=wire.RUNNING,
                            rank=2, distance_m=500.0),
        wire.public_athlete(id=4, bib="4", name="D", gender="m", category="",
                            status=wire.FINISHED, rank=1, distance_m=1000.0),
        wire.public_athlete(id=5, bib="5", name="E", gender="m", category="", status=wire.DNF,
                            distance_m=1200.0),
        wire.not_started_athlete(6, "A1", "F", "m", ""),
    ]  # fmt: skip
    ordered = sorted(athletes, key=wire.leaderboard_sort_key)
    assert [a["id"] for a in ordered] == [4, 3, 2, 6, 5, 1]


def test_an_update_carries_what_changed_and_merges_back():
    before = wire.not_started_athlete(7, "7", "G", "f", "W30")
    after = {**before, "status": wire.RUNNING, "distance_m": 120.0, "rank": 1}
    changes = wire.athlete_changes(before, after, splits_changed=False)
    assert changes == {"id": 7, "status": wire.RUNNING, "distance_m": 120.0, "rank": 1}
    held, race = {7: dict(before)}, {"clock_s": None}
    wire.merge_update(held, race, wire.update_message(1, 60.0, [changes]))
    assert held[7] == after and race["clock_s"] == 60.0
