#!/usr/bin/env python3
"""The two commands of the README, runnable with nothing but Python 3.11:

    python3 dev.py serve    # run RaceWeb with demo races at http://127.0.0.1:8000/
    python3 dev.py test     # install the test dependencies, run ruff and the test suite

Both create .venv/ and install the pinned requirements into it the first time (and
again whenever a requirements file changes).
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def ensure_venv(requirements: str) -> None:
    if not PYTHON.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    files = [ROOT / "requirements.txt", ROOT / requirements]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp = VENV / f".installed-{requirements}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing {requirements} into .venv ...", flush=True)
    run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            ROOT / requirements,
        ]
    )
    stamp.write_text(digest)


def run(command: list, **kwargs) -> None:
    subprocess.run([str(part) for part in command], cwd=ROOT, check=True, **kwargs)


def manage(*args: str) -> None:
    run([PYTHON, "manage.py", *args])


def serve(args: list[str]) -> None:
    ensure_venv("requirements.txt")
    (ROOT / "data").mkdir(exist_ok=True)
    manage("migrate", "--verbosity", "0")
    manage("load_demo_races")
    port = args[0] if args else os.environ.get("PORT", "8000")
    print(
        f"\nRaceWeb runs at http://127.0.0.1:{port}/  (admin: http://127.0.0.1:{port}/admin/,"
        " make a login with: python3 dev.py createadmin)\n",
        flush=True,
    )
    os.execv(PYTHON, [str(PYTHON), "manage.py", "serve", "--port", port])


def test(args: list[str]) -> None:
    ensure_venv("requirements-dev.txt")
    run([VENV / "bin" / "ruff", "check", "."])
    result = subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)
    sys.exit(result.returncode)


def createadmin(args: list[str]) -> None:
    ensure_venv("requirements.txt")
    (ROOT / "data").mkdir(exist_ok=True)
    manage("migrate", "--verbosity", "0")
    manage("createsuperuser", *args)


COMMANDS = {"serve": serve, "test": test, "createadmin": createadmin}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 dev.py {{{','.join(COMMANDS)}}} [args]")
    COMMANDS[sys.argv[1]](sys.argv[2:])
