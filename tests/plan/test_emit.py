"""Emitted artifacts, parsed back and checked against the plan and the formats' rules."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufence.catalog import load_catalog, parse_pci_device_id
from gpufence.load.inventory import load_snapshot
from gpufence.model.inventory import CcMode
from gpufence.model.snapshot import Snapshot
from gpufence.plan import Plan, check_geometry, place, resolve_profiles
from gpufence.plan.emit import render_artifacts, write_artifacts
from gpufence.plan.emit.k8s import mig_resource
from gpufence.plan.emit.names import LABEL_VALUE, dns_label, label_value
from tests.conftest import REPO
from tests.plan.fleets import inventory, pool, site, snapshot, tenant

EXAMPLE = REPO / "examples" / "neocloud" / "inventory.yaml"
_LABEL_KEY = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _mixed_fleet() -> Snapshot:
    """MIG on two models (one uniform pool, one mixed), CC nodes, exclusive nodes, odd names."""
    return snapshot(
        inventory(
            [
                pool("h100", "H100-SXM5-80GB", nodes=2),
                pool("a30", "A30", nodes=1, gpn=4),
                pool("b200", "B200", site="r1", nodes=2),
                # Two nodes: a confidential tenant's CC node is one CVM (cc-one-cvm-per-node).
                pool("h200", "H200-SXM-141GB", site="r1", nodes=2),
            ],
            [
                tenant("Team_A.x", "internal", "public", {"mig_profile": "1g.6gb", "count": 16}),
                tenant("beta", "partner", "internal", {"mig_profile": "3g.40gb", "count": 3}),
                tenant("gamma", "untrusted", "public", {"mig_profile": "1g.10gb", "count": 5}),
                tenant("conf", "partner", "confidential", {"gpus": 16, "gpus_per_job": 8}),
                tenant("infer", "partner", "confidential", {"gpus": 3, "gpu_model": "h200"}),
                tenant("batch", "internal", "internal", {"gpus": 2, "gpu_model": "h200"}),
            ],
            [site("s1"), site("r1", "rented")],
        )
    )


@pytest.fixture(params=["example", "mixed"])
def planned(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Snapshot, Plan, Path]:
    snap = load_snapshot(EXAMPLE) if request.param == "example" else _mixed_fleet()
    plan = place(snap)
    out = tmp_path / "out"
    write_artifacts(out, render_artifacts(snap, plan, out))
    return snap, plan, out


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_all(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def test_mig_parted_config_is_valid_and_matches_the_plan(
    planned: tuple[Snapshot, Plan, Path],
) -> None:
    _, plan, out = planned
    catalog = load_catalog()
    doc = _load(out / "mig-parted" / "config.yaml")
    assert doc["version"] == "v1" and set(doc) == {"version", "mig-configs"}
    configs = doc["mig-configs"]
    for name, entries in configs.items():
        assert LABEL_VALUE.fullmatch(name) and len(name) <= 63
        for entry in entries:
            assert entry["devices"] == "all" or all(isinstance(i, int) for i in entry["devices"])
            if not entry["mig-enabled"]:
                assert not entry.get("mig-devices")
                continue
            assert isinstance(entry["mig-devices"], dict)
            for device in entry["device-filter"]:
                assert re.fullmatch(r"0x[0-9A-F]{4}10DE", device)
                model = catalog.by_pci_device_id(parse_pci_device_id(device) or 0)
                assert model is not None
                wanted = [p for p, n in entry["mig-devices"].items() for _ in range(n)]
                assert check_geometry(model, resolve_profiles(model, wanted)).valid
    labels = json.loads((out / "plan.json").read_text())["mig_config_labels"]
    for pool_plan in plan.pools:
        model = catalog.get(pool_plan.gpu_model)
        assert model is not None
        for node in pool_plan.nodes:
            if not model.mig_capable:
                assert node.name not in labels
                continue
            entries = configs[labels[node.name]]
            if not node.mig:
                assert labels[node.name] == "all-disabled"
                continue
            # Every GPU of the node gets exactly the geometry the plan gave it.
            per_gpu: dict[int, Counter[str]] = {}
            for entry in entries:
                indices = range(len(node.gpus)) if entry["devices"] == "all" else entry["devices"]
                for i in indices:
                    assert i not in per_gpu
                    per_gpu[i] = Counter(entry["mig-devices"])
            assert sorted(per_gpu) == list(range(len(node.gpus)))
            for gpu in node.gpus:
                assert per_gpu[gpu.index] == Counter(gpu.geometry)


def test_device_plugin_configs(planned: tuple[Snapshot, Plan, Path]) -> None:
    _, plan, out = planned
    configmap = _load(out / "device-plugin" / "configmap.yaml")
    assert configmap["kind"] == "ConfigMap"
    for pool_plan in plan.pools:
        doc = _load(out / "device-plugin" / f"{pool_plan.name}.yaml")
        assert doc == yaml.safe_load(configmap["data"][pool_plan.name])
        assert doc["version"] == "v1" and "sharing" not in doc
        assert doc["flags"]["migStrategy"] == pool_plan.mig_strategy
        shapes = {g.geometry for n in pool_plan.nodes for g in n.gpus}
        if pool_plan.sharing.value != "mig":
            assert pool_plan.mig_strategy == "none"
        elif len(shapes) == 1 and len(set(next(iter(shapes)))) == 1:
            assert pool_plan.mig_strategy == "single"
        else:
            assert pool_plan.mig_strategy == "mixed"


def test_node_labels_and_taints(planned: tuple[Snapshot, Plan, Path]) -> None:
    _, plan, out = planned
    nodes = {d["metadata"]["name"]: d for d in _load_all(out / "k8s" / "nodes.yaml")}
    catalog = load_catalog()
    for pool_plan in plan.pools:
        model = catalog.get(pool_plan.gpu_model)
        assert model is not None
        for node in pool_plan.nodes:
            doc = nodes[node.name]
            assert doc["apiVersion"] == "v1" and doc["kind"] == "Node"
            labels = doc["metadata"]["labels"]
            for key, value in labels.items():
                assert _LABEL_KEY.fullmatch(key) and LABEL_VALUE.fullmatch(value), (key, value)
            assert labels["nvidia.com/device-plugin.config"] == pool_plan.name
            if model.cc.supports_cc:
                want = "off"
                if node.cc_mode is CcMode.ON:
                    ppcie = node.cc_multi_gpu and node.cc_multi_gpu.value == "protected-pcie"
                    want = "ppcie" if ppcie else "on"
                assert labels["nvidia.com/cc.mode"] == want
            else:
                assert "nvidia.com/cc.mode" not in labels
            taints = doc.get("spec", {}).get("taints", [])
            if node.exclusive:
                assert labels["gpufence.io/tenant"] == dns_label(node.tenants[0])
                assert taints == [
                    {
                        "key": "gpufence.io/tenant",
                        "value": dns_label(node.tenants[0]),
                        "effect": "NoSchedule",
                    }
                ]
            else:
                assert not taints


def test_tenant_manifests_quota_what_the_plan_gives(planned: tuple[Snapshot, Plan, Path]) -> None:
    _, plan, out = planned
    for tier in plan.tiers:
        name = dns_label(tier.tenant)
        assert _DNS.fullmatch(name)
        docs = {d["kind"]: d for d in _load_all(out / "k8s" / "tenants" / f"{name}.yaml")}
        assert docs["Namespace"]["metadata"]["name"] == name
        hard = docs["ResourceQuota"]["spec"]["hard"]
        want: Counter[str] = Counter()
        pools: set[str] = set()
        own_only = True
        cc_nodes = []
        for pool_plan in plan.pools:
            for node in pool_plan.nodes:
                if tier.tenant in node.tenants:
                    pools.add(pool_plan.name)
                    own_only &= node.exclusive
                if node.cc_mode is CcMode.ON:
                    # One CVM per CC node (NVIDIA Confidential Containers): all its GPUs as pgpu.
                    if node.tenants == (tier.tenant,):
                        want["requests.nvidia.com/pgpu"] += len(node.gpus)
                        cc_nodes.append(node)
                    continue
                for gpu in node.gpus:
                    if gpu.tenant == tier.tenant:
                        want["requests.nvidia.com/gpu"] += 1
                    for i in gpu.instances:
                        if i.tenant == tier.tenant:
                            want["requests." + mig_resource(pool_plan, i.profile)] += 1
        assert {k: int(v) for k, v in hard.items()} == (
            dict(want) or {"requests.nvidia.com/gpu": 0}
        )
        if not pools:
            assert "PodTemplate" not in docs
            continue
        templates = {
            d["metadata"]["name"]: d
            for d in _load_all(out / "k8s" / "tenants" / f"{name}.yaml")
            if d["kind"] == "PodTemplate"
        }
        if cc_nodes:
            cc = templates["gpufence-cc-workload"]["template"]["spec"]
            assert cc["runtimeClassName"] in (
                "kata-qemu-nvidia-gpu-snp",
                "kata-qemu-nvidia-gpu-tdx",
            )
            limits = cc["containers"][0]["resources"]["limits"]
            assert int(limits["nvidia.com/pgpu"]) == max(len(n.gpus) for n in cc_nodes)
            assert "nvidia.com/gpu" not in limits
        if len(cc_nodes) == sum(1 for p in plan.pools for n in p.nodes if tier.tenant in n.tenants):
            docs["PodTemplate"] = templates["gpufence-cc-workload"]
        else:
            docs["PodTemplate"] = templates["gpufence-gpu-workload"]
        spec = docs["PodTemplate"]["template"]["spec"]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        expressions = {
            e["key"]: e["values"] for e in terms["nodeSelectorTerms"][0]["matchExpressions"]
        }
        assert set(expressions["gpufence.io/pool"]) == pools
        annotations = docs["Namespace"]["metadata"].get("annotations", {})
        assert ("scheduler.alpha.kubernetes.io/node-selector" in annotations) == own_only


def test_mixed_fleet_exercises_every_emitter_branch(tmp_path: Path) -> None:
    snap = _mixed_fleet()
    plan = place(snap)
    assert not plan.unplaced
    strategies = {p.name: p.mig_strategy for p in plan.pools}
    assert strategies["a30"] == "single" and strategies["h100"] == "mixed"
    cc = {n.name: (n.cc_mode, n.cc_multi_gpu) for p in plan.pools for n in p.nodes}
    assert any(mode is CcMode.ON and multi and multi.value == "nvle" for mode, multi in cc.values())
    artifacts = render_artifacts(snap, plan, tmp_path)
    quota = yaml.safe_load_all(artifacts.files[f"k8s/tenants/{dns_label('Team_A.x')}.yaml"])
    hard = next(d for d in quota if d["kind"] == "ResourceQuota")["spec"]["hard"]
    assert hard == {
        "requests.nvidia.com/gpu": "16"
    }  # single strategy: MIG devices as nvidia.com/gpu


def test_planned_inventory_file_audits_clean_on_gpu_and_cc(tmp_path: Path) -> None:
    snap = load_snapshot(EXAMPLE)
    out = tmp_path / "plan"
    write_artifacts(out, render_artifacts(snap, place(snap), out))
    from gpufence.audit import audit

    run = audit(out / "planned-inventory.yaml")
    fails = [f for f in run.result.findings if f.status.value == "FAIL"]
    ours = [f for f in fails if f.control.startswith(("GPU-", "CC-"))]
    # Only advisory rules (low findings) stay below the default "weakest acceptable" plan:
    # the untrusted MIG tenants share GPUs, the regulated tenant's colocation node runs no CC.
    assert sorted((f.control, f.evidence["policy_rule"]) for f in ours) == [
        ("CC-001", "cc-colocation"),
        ("GPU-012", "untrusted-whole-gpus"),
    ]
    assert all(f.severity.value == "low" for f in ours)
    # --recommended follows them: nothing fails.
    again = tmp_path / "recommended"
    write_artifacts(again, render_artifacts(snap, place(snap, recommended=True), again))
    run = audit(again / "planned-inventory.yaml")
    assert not [
        f
        for f in run.result.findings
        if f.status.value == "FAIL" and f.control.startswith(("GPU-", "CC-"))
    ]


def test_summary_json_and_text(tmp_path: Path) -> None:
    snap = load_snapshot(EXAMPLE)
    artifacts = render_artifacts(snap, place(snap), tmp_path)
    summary = json.loads(json.dumps(artifacts.summary))
    assert {
        "stats",
        "bounds",
        "tiers",
        "pools",
        "outcomes",
        "unplaced",
        "files",
        "complete",
    } <= set(summary)
    assert summary["complete"] is True and summary["unplaced"] == []
    acme = next(t for t in summary["tiers"] if t["tenant"] == "acme-ai")
    assert acme["weakest"] == "dedicated-node" and any(
        r["id"] == "multi-gpu-cc" for r in acme["rationale"]
    )
    assert "mig-parted/config.yaml" in summary["files"]
    assert (
        "Lower bound: 42 GPUs" in artifacts.summary_text and "gap 0.00 %" in artifacts.summary_text
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("acme-ai", "acme-ai"), ("Team_A.x", None), ("a" * 64, None), ("--", None)],
)
def test_names(text: str, expected: str | None) -> None:
    ns = dns_label(text)
    assert _DNS.fullmatch(ns) and len(ns) <= 63
    if expected is not None:
        assert ns == expected
    assert dns_label("Team_A.x") != dns_label("team-a-x")  # no collapse onto one namespace
    value = label_value(text * 2)
    assert LABEL_VALUE.fullmatch(value) and len(value) <= 63
