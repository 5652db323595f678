"""What the deployment-file tests share: the validators (a missing one skips here with the
reason and fails when CI=true), running them, broken copies of real files, and the built
compose file and Kustomize overlays."""

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
OVERLAYS = ["dev", "prod"]
CUSTOM_RESOURCE_SCHEMAS = K8S / "schemas"
APP_COMMANDS = {
    # daphne closes WebSockets after 24 hours by default; ultra races run longer. Behind
    # the proxy, the client's address is in X-Forwarded-For: the per-address socket limit
    # counts spectators, not the proxy.
    "web": "daphne -b 0.0.0.0 -p 8000 --proxy-headers --websocket_timeout 604800 "
    "raceweb.asgi:application".split(),
    "relay": ["python", "manage.py", "relay"],
    "worker": "celery -A raceweb worker -Q simulation.quorum --prefetch-multiplier 1".split(),
    "beat": ["celery", "-A", "raceweb", "beat", "--schedule", "/tmp/celerybeat-schedule"],
    "migrate": ["python", "manage.py", "migrate"],
}


def missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: a missing validator is a failure)")
    pytest.skip(reason)


def tool(name: str) -> str:
    """A validator's executable: the one next to this Python first (the venv), else PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        missing(f"{name} is not installed (pip install -r requirements-dev.txt)")
    return found


def run(*cmd: str | Path, stdin: str | None = None, cwd: Path = ROOT):
    return subprocess.run(
        [str(part) for part in cmd],
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of(relative: str, tmp_path: Path) -> Path:
    target = tmp_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / relative, target)
    return target


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}: update the broken-copy test"
    path.write_text(text.replace(old, new, 1))


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@functools.cache  # each overlay is built once per run; broken copies live elsewhere
def kustomize(directory: Path) -> str:
    if not shutil.which("kubectl"):
        missing("kubectl is not installed (it builds the Kustomize overlays)")
    built = run("kubectl", "kustomize", directory)
    assert built.returncode == 0, built.stderr
    return built.stdout


def resources(manifests: str) -> list[dict]:
    return [resource for resource in yaml.safe_load_all(manifests) if resource]


def workloads(manifests: str) -> list[dict]:
    return [r for r in resources(manifests) if r["kind"] in ("Deployment", "Job", "StatefulSet")]


def env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if re.match(r"^\w+=", line)]
    return {name: value for name, value in pairs}
