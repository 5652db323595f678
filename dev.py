#!/usr/bin/env python3
"""The commands of the README, runnable with nothing but Python 3.11:

    python3 dev.py serve       # run RaceWeb with demo races at http://127.0.0.1:8000/
    python3 dev.py test        # install the test dependencies, run ruff and the test suite
    python3 dev.py lock        # re-lock requirements*.txt after editing a requirements*.in
    python3 dev.py check-lock  # fail when a requirements*.in changed without a new lock

serve and test create .venv/ and install a lock into it with `pip --require-hashes` the
first time, and again whenever that lock changes. Every package, transitive ones included,
comes from a lock made by pip-tools, so a fresh clone, CI and the image run the same bytes.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
# Each lock and the input it is compiled from, in compile order: the dev input constrains
# itself to the runtime lock (-c requirements.txt), so the runtime one comes first.
LOCKS = {"requirements.txt": "requirements.in", "requirements-dev.txt": "requirements-dev.in"}
# pip-tools runs in its own throwaway virtualenv, pinned here: it is a tool for making the
# locks, not something the application or the tests import.
LOCK_TOOLS = ["pip==26.0", "pip-tools==7.6.2"]
PIP_COMPILE = ["--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-emit-index-url"]


def ensure_venv(lock: str) -> None:
    if not PYTHON.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256((ROOT / lock).read_bytes()).hexdigest()
    stamp = VENV / f".installed-{lock}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing {lock} into .venv ...", flush=True)
    pip = [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "--require-hashes", "-r", ROOT / lock])
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
    """Lock check, ruff, then pytest under coverage.py: the processes the tests start
    (daphne, relay, Celery, bench) are measured too ([tool.coverage] in pyproject.toml,
    `patch = subprocess`), their data combined and the report printed. Coverage is reported,
    not enforced: the exit status is pytest's."""
    check_lock([])
    ensure_venv("requirements-dev.txt")
    run([VENV / "bin" / "ruff", "check", "."])
    data = ROOT / ".coverage-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    # Absolute, so a process started in another directory still writes its data here.
    env = {**os.environ, "COVERAGE_FILE": str(data / ".coverage")}
    coverage = [PYTHON, "-m", "coverage"]
    command = [str(part) for part in [*coverage, "run", "-m", "pytest", *args]]
    result = subprocess.run(command, cwd=ROOT, env=env)
    for step in (["combine", "--quiet"], ["report"]):  # a report problem is not a test failure
        subprocess.run([str(part) for part in [*coverage, *step]], cwd=ROOT, env=env)
    sys.exit(result.returncode)


def createadmin(args: list[str]) -> None:
    ensure_venv("requirements.txt")
    (ROOT / "data").mkdir(exist_ok=True)
    manage("migrate", "--verbosity", "0")
    manage("createsuperuser", *args)


def lock(args: list[str]) -> None:
    """Compile every requirements*.in into its lock with hashes, against PyPI alone (this
    machine's pip configuration, such as extra indexes or local wheel folders, stays out of
    the lock). Pins already in a lock are kept; pass pip-compile options such as
    `--upgrade-package celery` to move one."""
    tools = ROOT / ".venv-lock"
    if not (tools / "bin" / "pip-compile").exists():
        print(f"Creating {tools} with {' '.join(LOCK_TOOLS)} ...", flush=True)
        venv.create(tools, with_pip=True)
        run([tools / "bin" / "python", "-m", "pip", "install", "--quiet", *LOCK_TOOLS])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, CUSTOM_COMPILE_COMMAND="python3 dev.py lock")
    for output, source in LOCKS.items():
        print(f"Locking {source} -> {output} ...", flush=True)
        compile_ = [tools / "bin" / "pip-compile", "--quiet", *PIP_COMPILE, *args]
        run([*compile_, "--output-file", output, source], env=env)
    check_lock([])


def check_lock(args: list[str]) -> None:
    problems = stale_locks(ROOT)
    if problems:
        print("The locks do not match their inputs; run: python3 dev.py lock", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in problems), file=sys.stderr)
        sys.exit(1)


# --- Is a lock stale? Offline: compares the files, asks no package index. ---------------

REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(?:==\s*([^\s;,]+))?")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_inputs(path: Path, direct: dict[str, dict[str, str | None]]) -> None:
    """Fill `direct` with each input file's own requirements (name -> pinned version or
    None), following `-r` includes; `-c` constraints are locks, not inputs."""
    own: dict[str, str | None] = direct.setdefault(path.name, {})
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            read_inputs(path.parent / line.split(None, 1)[1], direct)
        elif not line.startswith("-") and (match := REQUIREMENT.match(line)):
            own[normalized(match[1])] = match[3]


def read_lock(path: Path) -> dict[str, tuple[str, int, list[str]]]:
    """A pip-compile lock as name -> (version, number of hashes, its `# via` reasons)."""
    entries: dict[str, tuple[str, int, list[str]]] = {}
    name, in_via = "", False
    for line in path.read_text().splitlines():
        if match := REQUIREMENT.match(line):
            name, in_via = normalized(match[1]), False
            entries[name] = (match[3] or "", 0, [])
        elif name and "--hash=" in line:
            version, hashes, via = entries[name]
            entries[name] = (version, hashes + 1, via)
        elif name and line.lstrip().startswith("#"):
            text = line.lstrip()[1:]
            if text.strip() == "via":
                in_via = True
            elif text.strip().startswith("via "):
                entries[name][2].append(text.strip()[4:])
            elif in_via and text.startswith("   "):
                entries[name][2].append(text.strip())
            else:
                in_via = False
    return entries


def stale_locks(root: Path) -> list[str]:
    """Why each lock no longer matches its inputs: a pin of an input missing from the lock
    or at another version, a locked package nothing requires any more, a package without
    hashes, or a package at another version than in the runtime lock."""
    problems: list[str] = []
    locked: dict[str, dict[str, tuple[str, int, list[str]]]] = {}
    for output, source in LOCKS.items():
        if not (root / output).exists():
            problems.append(f"{output} is missing")
            continue
        direct: dict[str, dict[str, str | None]] = {}
        read_inputs(root / source, direct)
        entries = locked[output] = read_lock(root / output)
        for file, requirements in direct.items():
            for name, version in requirements.items():
                if name not in entries:
                    problems.append(f"{output}: {name} (from {file}) is not locked")
                elif version and entries[name][0] != version:
                    found = entries[name][0]
                    problems.append(f"{output}: {file} pins {name}=={version}, lock has {found}")
        needed = {
            name
            for name, (_, _, via) in entries.items()
            if any(v.startswith("-r ") and name in direct.get(v[3:], {}) for v in via)
        }
        while grown := {n for n, e in entries.items() if n not in needed and needed & set(e[2])}:
            needed |= grown
        for name, (version, hashes, _) in entries.items():
            if name not in needed:
                problems.append(f"{output}: {name}=={version} is locked but nothing requires it")
            if not hashes:
                problems.append(f"{output}: {name}=={version} has no hash")
    runtime = locked.get("requirements.txt", {})
    for output, entries in locked.items():
        for name, (version, _, _) in entries.items():
            if name in runtime and runtime[name][0] != version:
                problems.append(f"{output}: {name}=={version}, requirements.txt has another")
    return problems


COMMANDS = {
    "serve": serve,
    "test": test,
    "createadmin": createadmin,
    "lock": lock,
    "check-lock": check_lock,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 dev.py {{{','.join(COMMANDS)}}} [args]")
    COMMANDS[sys.argv[1]](sys.argv[2:])
