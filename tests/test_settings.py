"""Production settings refuse to start with development secrets."""

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
