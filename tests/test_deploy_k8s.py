"""The Kubernetes manifests, proven offline: each overlay builds with `kubectl kustomize`
and passes kubernetes-validate --strict and the operators' custom-resource schemas (and a
deliberately broken copy fails); the workloads are hardened, probed and wired as
documented."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy_support import (
    APP_COMMANDS,
    CUSTOM_RESOURCE_SCHEMAS,
    K8S,
    OVERLAYS,
    env_file,
    kustomize,
    replace_once,
    resources,
    run,
    tool,
    workloads,
)

# --- Kubernetes ------------------------------------------------------------------------


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
