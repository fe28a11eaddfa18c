"""`gpufence k8s policies`: the emitted manifests, and their CEL evaluated with cel-python."""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufence.cli import main
from gpufence.collect.kubernetes import load_manifests
from gpufence.controls.k8s import scan_cluster as scan_state
from gpufence.kubernetes.policies import ADMISSION_RULES, AdmissionRule
from gpufence.model.findings import Status
from tests.kubernetes.clusters import Doc, clean_cluster, planted, write_cluster


class _StdlibRegex:
    """Stands in for google-re2 inside cel-python's ``matches()``.

    google-re2 1.1 intermittently aborted the whole test worker in ``re2.compile`` (SIGABRT, seen
    in CI runs); the patterns the policies use (anchors, classes, alternation, literal
    namespace names) mean the same in Python's ``re``.
    """

    error = re.error

    @staticmethod
    def search(pattern: str, text: str) -> re.Match[str] | None:
        with warnings.catch_warnings():
            # '[[]' (a literal '[' in RE2) draws Python's "possible nested set" FutureWarning.
            warnings.simplefilter("ignore", FutureWarning)
            return re.search(pattern, text)


def _celpy() -> Any:
    try:
        import celpy
        import celpy.evaluation
    except ImportError:  # pragma: no cover - depends on the environment
        if os.environ.get("CI") == "true":
            pytest.fail("cel-python is not installed (test dependency cel-python==0.5.0)")
        pytest.skip("cel-python is not installed (pip install cel-python==0.5.0)")
    celpy.evaluation.re2 = _StdlibRegex  # type: ignore[attr-defined]
    return celpy


def _selected(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics for the selectors the policies use."""
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "Exists" and key not in labels:
            return False
        if op == "In" and labels.get(key) not in values:
            return False
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _admits(rule: AdmissionRule, obj: Mapping[str, Any]) -> bool:
    """Evaluate ``rule`` on ``obj`` with cel-python, isolated from the rest of the test run.

    cel-python raises the process-wide recursion limit to 2500 and recurses deeply (lark parser,
    evaluator, re2): run it on a thread with a large C stack and restore the limit afterwards, so
    neither it nor later tests in the same xdist worker can overflow the C stack.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = _admits_unisolated(rule, obj)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            outcome["error"] = exc

    limit = sys.getrecursionlimit()
    previous = threading.stack_size(256 * 1024 * 1024)
    try:
        worker = threading.Thread(target=run, name="cel-eval")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
        sys.setrecursionlimit(limit)
    if "error" in outcome:
        raise outcome["error"]
    return bool(outcome["value"])


def _admits_unisolated(rule: AdmissionRule, obj: Mapping[str, Any]) -> bool:
    celpy = _celpy()
    env = celpy.Environment()
    variables: dict[str, Any] = {}
    for name, expression in rule.variables:
        program = env.program(env.compile(expression))
        variables[name] = program.evaluate({"object": celpy.json_to_cel(obj)})
    program = env.program(env.compile(rule.expression))
    types = celpy.celtypes
    cel_variables = types.MapType({types.StringType(k): v for k, v in variables.items()})
    activation = {"object": celpy.json_to_cel(obj), "variables": cel_variables}
    result = program.evaluate(activation)
    assert isinstance(result, celpy.celtypes.BoolType), result
    return bool(result)


def _admission_objects(docs: list[Doc]) -> list[tuple[str, str, Doc]]:
    """(resource the rule matches, namespace, object) as the API server would admit them."""
    out = []
    for doc in docs:
        ns = doc["metadata"].get("namespace", "default")
        if doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": doc["metadata"]["name"] + "-x",
                    "namespace": ns,
                    **(
                        {"annotations": a}
                        if (a := template.get("metadata", {}).get("annotations"))
                        else {}
                    ),
                },
                "spec": template["spec"],
            }
            out.append(("pods", ns, pod))
        elif doc["kind"] == "Pod":
            out.append(("pods", ns, doc))
        elif doc["kind"] == "ResourceClaim":
            out.append(("resourceclaims", ns, doc))
    return out


def _refused(docs: list[Doc]) -> set[tuple[str, str]]:
    """(rule control, object name) of every object some emitted rule refuses."""
    labels = {
        d["metadata"]["name"]: d["metadata"].get("labels", {})
        for d in docs
        if d["kind"] == "Namespace"
    }
    refused = set()
    for rule in ADMISSION_RULES:
        resources = {r for _, _, r in rule.resources}
        versions = {v for _, vs, _ in rule.resources for v in vs}
        for resource, ns, obj in _admission_objects(docs):
            if resource not in resources or obj["apiVersion"].split("/")[-1] not in versions:
                continue
            if not _selected(rule.namespace_selector, labels.get(ns, {})):
                continue
            if not _admits(rule, obj):
                refused.add((rule.control, obj["metadata"]["name"]))
    return refused


def test_clean_cluster_is_admitted() -> None:
    assert _refused(clean_cluster()) == set()


@pytest.mark.parametrize(
    ("control", "name"),
    [
        ("K8S-003", "inference-x"),
        ("K8S-004", "inference-x"),
        ("K8S-005", "inference-x"),
        ("K8S-010", "gpu-claim"),
        ("K8S-011", "web-x"),
        ("K8S-014", "trainer-x"),
    ],
)
def test_planted_mistakes_are_refused(control: str, name: str) -> None:
    assert _refused(planted(control)) == {(control, name)}


def _pod(namespace: str, **spec: Any) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"containers": [{"name": "c"}], **spec},
    }


def _rule(control: str) -> AdmissionRule:
    return next(r for r in ADMISSION_RULES if r.control == control)


def test_confidential_gpu_pods_must_select_cc_nodes() -> None:
    rule = _rule("K8S-012")
    gpu = [{"name": "c", "resources": {"limits": {"nvidia.com/mig-1g.10gb": 1}}}]
    assert not _admits(rule, _pod("team-a", containers=gpu))
    assert not _admits(
        rule, _pod("team-a", containers=gpu, nodeSelector={"nvidia.com/cc.mode": "off"})
    )
    assert _admits(rule, _pod("team-a", containers=gpu, nodeSelector={"nvidia.com/cc.mode": "on"}))
    assert _admits(rule, _pod("team-a"))  # no GPU: nothing to protect
    # Only namespaces labelled confidential/regulated are bound.
    assert _selected(
        rule.namespace_selector,
        {"gpufence.io/tenant": "a", "gpufence.io/data-sensitivity": "regulated"},
    )
    assert not _selected(
        rule.namespace_selector,
        {"gpufence.io/tenant": "b", "gpufence.io/data-sensitivity": "public"},
    )


def test_confidential_gpu_pods_must_be_confidential_containers() -> None:
    rule = _rule("K8S-014")
    pgpu = [{"name": "c", "resources": {"limits": {"nvidia.com/pgpu": 1}}}]
    for runtime in ("kata-qemu-nvidia-gpu-snp", "kata-qemu-nvidia-gpu-tdx"):
        assert _admits(rule, _pod("team-a", containers=pgpu, runtimeClassName=runtime))
    assert not _admits(rule, _pod("team-a", containers=pgpu))  # runc
    assert not _admits(
        rule, _pod("team-a", containers=pgpu, runtimeClassName="kata-qemu-nvidia-gpu")
    )
    plain = [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}}]
    assert not _admits(
        rule, _pod("team-a", containers=plain, runtimeClassName="kata-qemu-nvidia-gpu-snp")
    )
    assert _admits(rule, _pod("team-a"))  # no GPU: nothing to protect


@pytest.mark.parametrize(
    ("annotation", "admitted"),
    [
        ("rdma-b", True),
        ("team-b/rdma-b", True),
        ("rdma-b@net1, team-b/other", True),
        ("team-a/rdma-a", False),
        ("rdma-b, team-a/rdma-a@net2", False),
        ('[{"name": "rdma-b"}]', True),
        ('[{"name": "rdma-a", "namespace": "team-a"}]', False),
    ],
)
def test_network_annotation_rule(annotation: str, admitted: bool) -> None:
    pod = _pod("team-b")
    pod["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/networks": annotation}
    assert _admits(_rule("K8S-011"), pod) is admitted


@pytest.mark.parametrize(
    ("path", "admitted"),
    [
        ("/dev/nvidia0", False),
        ("/dev/nvidiactl", False),
        ("/dev", False),
        ("/", False),
        ("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", False),
        ("/run/nvidia/driver", False),
        ("/var/lib/kubelet/device-plugins", False),
        ("/data/datasets", True),
        ("/mnt/nvme0", True),
    ],
)
def test_host_path_rule(path: str, admitted: bool) -> None:
    pod = _pod("team-b", volumes=[{"name": "v", "hostPath": {"path": path}}])
    assert _admits(_rule("K8S-004"), pod) is admitted


def test_emitted_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_cluster(tmp_path / "cluster", clean_cluster())
    out = tmp_path / "policies"
    code = main(
        [
            "k8s",
            "policies",
            "--out",
            str(out),
            "--from",
            str(source),
            "--gpu-quota",
            "4",
            "--signature-issuer",
            "https://token.actions.githubusercontent.com",
            "--signature-subject",
            "https://github.com/example/models/.github/workflows/build.yml@refs/heads/main",
        ]
    )
    assert code == 0
    docs = {name.name: list(yaml.safe_load_all(name.read_text())) for name in out.iterdir()}
    vaps = docs["admission-policies.yaml"]
    policies = [d for d in vaps if d["kind"] == "ValidatingAdmissionPolicy"]
    bindings = [d for d in vaps if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert {d["apiVersion"] for d in vaps} == {"admissionregistration.k8s.io/v1"}
    assert {p["metadata"]["name"] for p in policies} == {b["spec"]["policyName"] for b in bindings}
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings)
    assert all(p["spec"]["failurePolicy"] == "Fail" for p in policies)
    # The emitted expressions are exactly the tested ones.
    emitted = {p["metadata"]["name"]: p["spec"]["validations"][0]["expression"] for p in policies}
    assert emitted == {r.name: r.expression for r in ADMISSION_RULES}
    kyverno = docs["kyverno-policies.yaml"]
    assert {(d["apiVersion"], d["kind"]) for d in kyverno} == {("kyverno.io/v1", "ClusterPolicy")}
    kyverno_cel = {
        d["spec"]["rules"][0]["validate"]["cel"]["expressions"][0]["expression"] for d in kyverno
    }
    assert kyverno_cel <= set(emitted.values()) and len(kyverno) >= 5
    tenants = docs["tenant-namespaces.yaml"]
    assert {d["metadata"]["name"] for d in tenants if d["kind"] == "Namespace"} == {
        "team-a",
        "team-b",
        "team-c",
    }
    quota_b = next(
        d
        for d in tenants
        if d["kind"] == "ResourceQuota" and d["metadata"]["namespace"] == "team-b"
    )
    assert quota_b["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "4",
        "requests.nvidia.com/gpu.shared": "4",
    }

    # Scanned back, the emitted manifests produce no K8S failure ...
    alone = scan_state(load_manifests([out])).findings
    assert [f for f in alone if f.status is Status.FAIL] == []
    # ... and they repair a cluster that lacks default-deny policies and quotas.
    broken = [d for d in clean_cluster() if d["kind"] not in ("NetworkPolicy", "ResourceQuota")]
    before = scan_state(load_manifests([write_cluster(tmp_path / "broken", broken)])).findings
    assert {f.control for f in before if f.status is Status.FAIL} == {"K8S-006", "K8S-008"}
    after = scan_state(load_manifests([tmp_path / "broken", out])).findings
    assert [f for f in after if f.status is Status.FAIL] == []


def test_policies_without_quota_or_signer_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p"
    assert main(["k8s", "policies", "--out", str(out), "--namespace", "ml=alpha"]) == 0
    err = capsys.readouterr().err
    assert "K8S-008" in err and "K8S-009" in err
    assert not (out / "image-signatures.yaml").exists()
    assert main(["k8s", "policies", "--out", str(out), "--signature-issuer", "x"]) == 2
