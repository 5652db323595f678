"""The benchmark harness runs end to end (seconds, tiny numbers); its numbers are not judged.

`python bench/run.py --smoke` starts daphne, the relay, the load generator, the bare
baseline and spectator processes against the real RabbitMQ and PostgreSQL, and must
produce a table and a JSON file in which positions reached the spectators without gaps,
on both spectator protocols (v1 JSON, raceweb.v2).
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parent.parent
# One database per checkout: other checkouts on this machine may run the smoke test too.
CHECKOUT = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
SMOKE_DATABASE = f"postgres://postgres@127.0.0.1:5432/raceweb_bench_smoke_{CHECKOUT}"

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.mark.timeout(300)
def test_smoke_run_delivers_positions_without_gaps(tmp_path):
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("PostgreSQL", "127.0.0.1", 5432)
    output = tmp_path / "smoke.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    command = [sys.executable, "bench/run.py", "--smoke", "--json", str(output)]
    command += ["--database-url", SMOKE_DATABASE]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0].split("|")[1].strip() == "scen" and len(table) == 4, result.stdout

    payload = json.loads(output.read_text())
    rows = {row["server"]: row for row in payload["rows"]}
    assert set(rows) == {"bare", "raceweb", "raceweb-v2"}
    for row in rows.values():
        assert row["connected"] == row["spectators"] > 0
        assert row["frames"] > 0 and row["positions"] > 0, row
        assert row["gaps"] == 0 and row["resyncs"] == 0 and row["repeats"] == 0, row
        assert row["mismatches"] == 0, "the quick frame scan disagreed with json.loads"
        assert 0 <= row["p50_ms"] <= row["p99_ms"]
        assert {p["name"] for p in row["processes"]} >= {"relay", "loadgen"}
    assert rows["raceweb"]["ratio_to_bare"] > 0 and rows["raceweb-v2"]["ratio_to_bare"] > 0
    # the same positions in fewer bytes: raceweb.v2 (binary deltas) against v1 JSON
    assert rows["raceweb-v2"]["bytes_per_position"] < rows["raceweb"]["bytes_per_position"] / 2
    assert rows["raceweb-v2"]["snapshot_kib"] < rows["raceweb"]["snapshot_kib"]
