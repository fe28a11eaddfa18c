"""deploy/: the Kubernetes manifests validate against the API schemas, pass gpufence's own
Kubernetes controls, and keep the security properties docs/deploy.md promises."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gpufence.collect.kubernetes import load_manifests
from gpufence.controls.k8s import scan_cluster
from gpufence.model.findings import Status

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
# The oldest Kubernetes release the manifests target (Indexed Jobs with backoffLimitPerIndex are
# GA from 1.33) and the newest schema kubernetes-validate ships.
VERSIONS = ("1.33.0", kubernetes_validate.latest_version())


def _documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                yield f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc


DOCUMENTS = dict(_documents())


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, doc in DOCUMENTS.items():
        spec = doc.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template"
        )
        if template:
            yield name, template["spec"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_manifest_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    kubernetes_validate.validate(DOCUMENTS[name], version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    images = {image["name"] for image in kustomization["images"]}
    used = {c["image"] for _, spec in _pod_specs() for c in spec["containers"]}
    assert used <= images


def test_our_deployment_passes_our_own_kubernetes_controls() -> None:
    result = scan_cluster(load_manifests([MANIFESTS]))
    bad = [f for f in result.findings if f.status in (Status.FAIL, Status.ERROR)]
    assert bad == [], [(f.control, f.resource, f.message) for f in bad]
    assert {f.control for f in result.findings} >= {f"K8S-{n:03d}" for n in range(1, 14)}


@pytest.mark.parametrize("name", sorted(dict(_pod_specs())))
def test_every_pod_runs_unprivileged_on_a_read_only_root(name: str) -> None:
    spec = dict(_pod_specs())[name]
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec
    assert all("hostPath" not in volume for volume in spec.get("volumes", []))
    for container in spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert not ctx.get("privileged", False)
        assert "limits" in container["resources"]
        # Credentials reach pods as Secret references, never as literal values.
        for env in container.get("env", []):
            if re.search(r"PASSWORD|TOKEN|SECRET|STORE", env["name"]):
                assert "valueFrom" in env, env["name"]


def test_collector_daemonset_reads_nvml_on_gpu_nodes_only() -> None:
    (spec,) = [s for n, s in _pod_specs() if "DaemonSet/gpufence-collector" in n]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["runtimeClassName"] == "nvidia"
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"  # NVML only, no compute
    assert "gpufence collect gpu" in " ".join(container["args"])
    assert spec["automountServiceAccountToken"] is False


def test_bmc_scan_job_shards_by_completion_index() -> None:
    job = DOCUMENTS["bmc-scan-job.yaml:Job/gpufence-bmc-scan"]
    assert job["spec"]["completionMode"] == "Indexed"
    shards = job["spec"]["completions"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SHARDS"]["value"] == str(shards)
    assert '--shard "$JOB_COMPLETION_INDEX/$SHARDS"' in container["args"][0]
    assert "--intrusive" not in container["args"][0]


def test_rbac_for_the_live_scan_is_read_only_and_never_reads_secrets() -> None:
    role = DOCUMENTS["rbac.yaml:ClusterRole/gpufence-k8s-scan"]
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list"}
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"]


def test_broker_is_reachable_only_from_labelled_clients_and_has_no_egress() -> None:
    policies = [d for d in DOCUMENTS.values() if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in deny)
    (broker,) = [
        p
        for p in policies
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        == "gpufence-broker"
    ]
    assert broker["spec"]["egress"] == []
    (rule,) = broker["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base is not None and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    assert '".[${EXTRAS}]"' in text
