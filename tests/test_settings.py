"""Production settings refuse to start with development secrets; the mode (embedded or
distributed) is chosen once, at start-up, from AMQP_URL."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "x" * 50


def import_settings(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "AMQP_URL")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import raceweb.settings"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DEBUG": "False"}, "Set SECRET_KEY"),
        ({"DEBUG": "False", "SECRET_KEY": "short"}, "Set SECRET_KEY"),
        (
            {"DEBUG": "False", "SECRET_KEY": GOOD_KEY, "AMQP_URL": "amqp://guest:guest@mq:5672/"},
            "default guest credentials",
        ),
    ],
)
def test_production_refuses_default_secrets(env, reason):
    result = import_settings(**env)
    assert result.returncode != 0
    assert reason in result.stderr


def test_production_starts_with_real_secrets():
    result = import_settings(
        DEBUG="False", SECRET_KEY=GOOD_KEY, AMQP_URL="amqp://raceweb:s3cret@mq:5672/"
    )
    assert result.returncode == 0, result.stderr


def run_python(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "AMQP_URL"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


SHOW_MODE = """
import django
django.setup()
from races import deployment
from races.organizer import lifecycle
print(deployment.current().name, [hook.__name__ for hook in lifecycle.on_started])
"""


def test_amqp_url_chooses_the_distributed_mode_at_start_up():
    result = run_python(
        "-c", SHOW_MODE, DJANGO_SETTINGS_MODULE="raceweb.settings", AMQP_URL="amqp://x@mq:5672/"
    )
    assert result.returncode == 0, result.stderr
    # The exchange and relay queue are declared before the simulation is enqueued.
    assert result.stdout.split(" ", 1) == [
        "distributed",
        "['declare_race', 'notify_relay', 'start_simulation']\n",
    ]


def test_the_relay_command_refuses_to_run_in_embedded_mode():
    result = run_python("manage.py", "relay")
    assert result.returncode != 0
    assert "Set AMQP_URL: in embedded mode the web process relays." in result.stderr
