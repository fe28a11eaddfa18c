"""`gpufence k8s scan` on manifests: the real NVIDIA configs, a clean cluster, planted mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufence.cli import main
from gpufence.collect.kubernetes import load_manifests
from gpufence.controls.k8s import VIEW_CHECKS
from gpufence.controls.k8s import scan_cluster as scan_state
from gpufence.errors import InputError
from gpufence.model.findings import Status
from tests.inventories import base_inventory, write_inventory
from tests.kubernetes.clusters import PLANTED, clean_cluster, planted, write_cluster


def _scan(paths: list[Path], tenants: dict[str, str] | None = None) -> list[Any]:
    return list(scan_state(load_manifests(paths), tenants).findings)


def _failed(findings: list[Any]) -> set[str]:
    return {f.control for f in findings if f.status is Status.FAIL}


def test_every_control_is_exercised() -> None:
    assert set(PLANTED) == set(VIEW_CHECKS)


def test_clean_cluster_has_no_failure(tmp_path: Path) -> None:
    findings = _scan([write_cluster(tmp_path / "clean", clean_cluster())])
    assert _failed(findings) == set(), [f.message for f in findings if f.status is Status.FAIL]
    statuses = {f.control: {g.status for g in findings if g.control == f.control} for f in findings}
    # Every control looked at something real (no blanket not-applicable) ...
    assert all(Status.PASS in s for s in statuses.values())
    # ... and the operator's privileged device plugin is not a tenant finding.
    assert not any("gpu-operator" in f.resource for f in findings if f.control == "K8S-003")


@pytest.mark.parametrize("control", sorted(PLANTED))
def test_each_planted_mistake_fails_its_control(tmp_path: Path, control: str) -> None:
    findings = _scan([write_cluster(tmp_path / control, planted(control))])
    assert _failed(findings) == {control}, [
        (f.control, f.message) for f in findings if f.status is Status.FAIL
    ]
    failing = [f for f in findings if f.status is Status.FAIL]
    # Findings point into the manifest file (file:line), not just at the cluster.
    located = [f for f in failing if f.location is not None]
    assert located and all(f.location.file.endswith(".yaml") for f in located)


def test_planted_messages(tmp_path: Path) -> None:
    by_control = {
        c: [f for f in _scan([write_cluster(tmp_path / c, planted(c))]) if f.status is Status.FAIL]
        for c in ("K8S-001", "K8S-004", "K8S-005", "K8S-012")
    }
    assert by_control["K8S-001"][0].resource == "k8s/cluster/Node/gpu-2"
    assert "b, c" in by_control["K8S-001"][0].message
    assert "/dev/nvidia0" in by_control["K8S-004"][0].message
    assert by_control["K8S-004"][0].resource == "k8s/ns/team-b/Deployment/inference"
    assert "toolkit accepts it" in by_control["K8S-005"][0].message
    assert "gpu-1" in by_control["K8S-012"][0].message


def test_location_points_at_the_field(tmp_path: Path) -> None:
    directory = write_cluster(tmp_path / "c", planted("K8S-004"))
    finding = next(f for f in _scan([directory]) if f.status is Status.FAIL)
    assert finding.location is not None and finding.location.line is not None
    text = Path(finding.location.file).read_text().splitlines()
    assert "/dev/nvidia0" in text[finding.location.line - 1]


def test_real_nvidia_configs(shared_dir: Path) -> None:
    data = shared_dir / "data" / "k8s-gpu"
    state = load_manifests([data])
    # Helm values and the vGPU catalogue are not Kubernetes objects: skipped with a note.
    assert any("kata-nvidia-gpu-values.yaml" in n for n in state.notes)
    nodes = list(state.of("Node"))
    assert {n.name for n in nodes} == {
        "cloud-native-docs_output_mig-mixed-node-labels",
        "cloud-native-docs_output_mig-node-labels",
    }
    assert nodes[0].labels["nvidia.com/gpu.product"].startswith("NVIDIA-H100")
    findings = list(scan_state(state).findings)
    fails = {
        (f.control, f.resource, f.message.split(":")[0])
        for f in findings
        if f.status is Status.FAIL
    }
    expected_configs = {
        ("k8s/ns/default/ConfigMap/time-slicing-config-all", "config 'any'"),
        ("k8s/ns/default/ConfigMap/time-slicing-config-fine", "config 'a100-40gb'"),
        ("k8s/ns/default/ConfigMap/time-slicing-config-fine", "config 'tesla-t4'"),
        ("k8s/cluster/DevicePluginConfig/gpu-operator_tests_plugin-config", "config file"),
    }
    for control in ("K8S-002", "K8S-013"):
        assert {(r, m) for c, r, m in fails if c == control} == expected_configs
    assert _failed(findings) == {"K8S-002", "K8S-013"}


def test_real_configs_with_tenants(shared_dir: Path, tmp_path: Path) -> None:
    data = shared_dir / "data" / "k8s-gpu"
    tenants = tmp_path / "tenants.yaml"
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": n, "labels": {"gpufence.io/tenant": n}},
        }
        for n in ("red", "blue")
    ] + [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "job", "namespace": n},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
        }
        for n in ("red", "blue")
    ]
    tenants.write_text(yaml.safe_dump_all(docs))
    files = [
        data / "cloud-native-docs_input_time-slicing-config-all.yaml",
        data / "cloud-native-docs_output_mig-mixed-node-labels.json",
        tenants,
    ]
    findings = _scan(files, {"red": "confidential", "blue": "public"})
    soft = [f for f in findings if f.control == "K8S-001"]
    assert [f.status for f in soft] == [Status.FAIL]
    assert "blue, red" in soft[0].message and "time-slicing" in soft[0].message
    # The real H100 node labels carry no nvidia.com/cc.mode: the confidential tenant can land there.
    cc = [f for f in findings if f.control == "K8S-012"]
    assert [f.status for f in cc] == [Status.FAIL] and cc[0].resource == "k8s/ns/red/Pod/job"


def test_inventory_names_tenant_namespaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = clean_cluster()
    for doc in docs:
        if doc["kind"] == "Namespace":
            doc["metadata"]["labels"].pop("gpufence.io/tenant", None)
            doc["metadata"]["labels"].pop("gpufence.io/data-sensitivity", None)
    directory = write_cluster(tmp_path / "c", docs)
    inventory = base_inventory()
    inventory["tenants"] = [
        {"name": "team-a", "trust": "partner", "data_sensitivity": "confidential"},
        {"name": "team-b", "trust": "untrusted", "data_sensitivity": "public"},
    ]
    inventory["node_pools"][0]["workloads"] = [{"tenant": "team-a"}]
    inventory["storage"][0]["tenants"] = ["team-a"]
    inv = write_inventory(tmp_path, inventory)
    code = main(["k8s", "scan", str(directory), "--inventory", str(inv), "--format", "json"])
    assert code == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    privileged = {f["resource"] for f in findings if f["control"] == "K8S-007"}
    assert privileged == {"k8s/cluster/Namespace/team-a", "k8s/cluster/Namespace/team-b"}


def test_cli_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write_cluster(tmp_path / "clean", clean_cluster())
    assert main(["k8s", "scan", str(clean), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "gpufence.findings/v1" and report["summary"]["verdict"] == "pass"
    bad = write_cluster(tmp_path / "bad", planted("K8S-003"))
    assert main(["k8s", "scan", str(bad), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["runs"][0]["results"]
    assert main(["k8s", "scan", str(bad), "--fail-on", "never"]) == 0
    mutes = tmp_path / "mutes.yaml"
    mutes.write_text(
        "version: 1\nmutes:\n  - {control: K8S-003, reason: accepted for the pilot tenant, "
        "expires: 2999-01-01}\n"
    )
    capsys.readouterr()
    assert main(["k8s", "scan", str(bad), "--mutelist", str(mutes), "--format", "json"]) == 0
    statuses = {
        f["status"]
        for f in json.loads(capsys.readouterr().out)["findings"]
        if f["control"] == "K8S-003"
    }
    assert statuses == {"MUTED"} or statuses == {"MUTED", "PASS"}


def test_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    assert main(["k8s", "scan", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken}:" in err and "Traceback" not in err
    assert main(["k8s", "scan", str(tmp_path / "missing")]) == 2
    assert main(["k8s", "scan"]) == 2
    dup = tmp_path / "dup.yaml"
    dup.write_text("apiVersion: v1\nkind: Pod\nkind: Pod\n")
    with pytest.raises(InputError, match="duplicate key"):
        load_manifests([dup])


def test_unquoted_dates_are_strings_and_bad_integers_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kubernetes reads YAML as JSON: an unquoted date is a string there. PyYAML built a datetime
    # and, for 2026-13-45, raised a bare ValueError (exit 3, "internal error").
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    deployed: 2026-13-45\n    since: 2026-01-02\nspec:\n  containers: []\n"
    )
    (obj,) = load_manifests([pod]).objects
    assert obj.body["metadata"]["annotations"] == {"deployed": "2026-13-45", "since": "2026-01-02"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    n: 0b_\n")
    assert main(["k8s", "scan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6:8: cannot read '0b_' as an integer" in err and "Traceback" not in err


def test_evidence_feeds_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_cluster(tmp_path / "c", planted("K8S-006"))
    evidence = tmp_path / "k8s.json"
    main(["k8s", "scan", str(directory), "--out", str(evidence), "--fail-on", "never"])
    # The old spelling writes the same evidence, with a deprecation warning.
    old = tmp_path / "old.json"
    main(["k8s", "scan", str(directory), "--evidence-out", str(old), "--fail-on", "never"])
    assert "--evidence-out is deprecated" in capsys.readouterr().err
    assert json.loads(old.read_text())["raw"] == json.loads(evidence.read_text())["raw"]
    from gpufence.audit import audit
    from gpufence.controls import k8s

    inventory = write_inventory(tmp_path, base_inventory())
    run = audit(inventory, [evidence], [k8s.namespaces.no_default_deny])
    statuses = {f.resource: f.status for f in run.result.findings}
    assert statuses["k8s/cluster/Namespace/team-a"] is Status.FAIL
    assert statuses["k8s/cluster/Namespace/team-b"] is Status.PASS
    # Located at the object in its manifest (as the scan recorded it), never in the inventory.
    for finding in run.result.findings:
        assert finding.location is not None and finding.location.file.startswith(str(directory))
        assert finding.location.line is not None and finding.location.line > 1
    empty = audit(inventory, [], [k8s.namespaces.no_default_deny]).result.findings
    assert [f.status for f in empty] == [Status.NOT_EVALUATED]
