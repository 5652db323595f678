"""The dependency locks: every package installed anywhere comes from a lock with hashes,
and a requirement changed without re-locking fails `python3 dev.py test` (and so CI).

`dev.py check-lock` compares the files offline; these tests run it on copies of the
inputs and locks with one thing changed, as a developer who forgot `python3 dev.py lock`
would leave them.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "requirements.in",
    "requirements-bench.in",
    "requirements-dev.in",
    "requirements.txt",
    "requirements-dev.txt",
]


def load_dev():
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = load_dev()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path.name}"
    path.write_text(text.replace(old, new))


def test_the_committed_locks_match_their_inputs():
    assert dev.stale_locks(ROOT) == []
    result = subprocess.run(
        [sys.executable, "dev.py", "check-lock"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_locked_package_has_hashes_and_socket_writer_libraries_are_pinned():
    for lock in ("requirements.txt", "requirements-dev.txt"):
        entries = dev.read_lock(ROOT / lock)
        assert entries and all(hashes for _, hashes, _ in entries.values()), lock
        assert {"twisted", "autobahn"} <= set(entries)
        assert "aio-pika" not in entries
    assert "psutil" not in dev.read_lock(ROOT / "requirements.txt")


def test_a_bumped_pin_without_a_new_lock_is_stale(checkout):
    edit(checkout / "requirements.in", "Django==5.2.19", "Django==5.2.20")
    problems = dev.stale_locks(checkout)
    assert any("django==5.2.20" in p and "requirements.txt" in p for p in problems), problems
    assert any(p.startswith("requirements-dev.txt") for p in problems), problems


def test_an_added_requirement_without_a_new_lock_is_stale(checkout):
    with (checkout / "requirements-bench.in").open("a") as bench:
        bench.write("locust==2.40.0\n")
    problems = dev.stale_locks(checkout)
    assert problems == ["requirements-dev.txt: locust (from requirements-bench.in) is not locked"]


def test_a_dropped_requirement_without_a_new_lock_is_stale(checkout):
    edit(checkout / "requirements.in", "gpxpy==1.6.2\n", "")
    problems = dev.stale_locks(checkout)
    assert "requirements.txt: gpxpy==1.6.2 is locked but nothing requires it" in problems


def test_a_lock_entry_without_hashes_is_refused(checkout):
    lock = checkout / "requirements.txt"
    entry = re.search(r"^gpxpy==1\.6\.2 \\\n(    --hash=\S+( \\)?\n)+", lock.read_text(), re.M)
    edit(lock, entry[0], "gpxpy==1.6.2\n")
    assert dev.stale_locks(checkout) == ["requirements.txt: gpxpy==1.6.2 has no hash"]


def test_dev_py_check_lock_fails_on_a_stale_lock(checkout):
    """The command CI runs (through `dev.py test`) exits non-zero and says what to do."""
    shutil.copy(ROOT / "dev.py", checkout / "dev.py")
    edit(checkout / "requirements-dev.in", "pytest==9.2.0", "pytest==9.1.0")
    result = subprocess.run(
        [sys.executable, "dev.py", "check-lock"], cwd=checkout, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "python3 dev.py lock" in result.stderr and "pytest==9.1.0" in result.stderr
