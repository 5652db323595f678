"""README's "Faults and what we promise": every row names tests, and every test exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/\w+\.py)::(\w+)`")


def fault_rows() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Faults and what we promise", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][
        1:
    ]


def test_every_fault_row_names_tests_that_exist():
    rows = fault_rows()
    assert len(rows) >= 15
    for row in rows:
        references = REFERENCE.findall(row)
        assert references, f"no test named in: {row[:80]}"
        for path, name in references:
            source = (ROOT / path).read_text()
            assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{path}::{name}"
