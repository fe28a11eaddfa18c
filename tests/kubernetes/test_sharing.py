"""GPU sharing K8S-001 must recognise beyond the device plugin: NVIDIA DRA GpuConfig sharing
and HAMi shares; and K8S-014, confidential pods outside NVIDIA Confidential Containers.

Manifests follow the real shapes: the NVIDIA DRA driver's GpuConfig (resource.nvidia.com/v1beta1,
``sharing.strategy: TimeSlicing | MPS``, as in k8s-dra-driver-gpu's demo specs) and HAMi's
examples/nvidia/default_use.yaml, use_exclusive_card.yaml and specify_scheduling_policy.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpufence.collect.kubernetes import load_manifests
from gpufence.controls.k8s import scan_cluster
from gpufence.model.findings import Finding, Status
from tests.kubernetes.clusters import clean_cluster, write_cluster

Doc = dict[str, Any]


def _scan(tmp_path: Path, docs: list[Doc]) -> list[Finding]:
    return list(scan_cluster(load_manifests([write_cluster(tmp_path / "c", docs)])).findings)


def _of(findings: list[Finding], control: str) -> list[Finding]:
    return [f for f in findings if f.control == control]


def _gpu_config(strategy: str) -> Doc:
    sharing: Doc = {"strategy": strategy}
    if strategy == "TimeSlicing":
        sharing["timeSlicingConfig"] = {"interval": "Long"}
    else:
        sharing["mpsConfig"] = {
            "defaultActiveThreadPercentage": 50,
            "defaultPinnedDeviceMemoryLimit": "10Gi",
        }
    return {
        "requests": ["shared-gpu"],
        "opaque": {
            "driver": "gpu.nvidia.com",
            "parameters": {
                "apiVersion": "resource.nvidia.com/v1beta1",
                "kind": "GpuConfig",
                "sharing": sharing,
            },
        },
    }


def _claim(namespace: str, strategy: str) -> Doc:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "timesliced-gpu", "namespace": namespace},
        "spec": {
            "devices": {
                "requests": [
                    {"name": "shared-gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}
                ],
                "config": [_gpu_config(strategy)],
            }
        },
    }


def _claim_user(namespace: str, name: str, claim: str, template: bool = False) -> Doc:
    ref = "resourceClaimTemplateName" if template else "resourceClaimName"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 4,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "nbody", "resources": {"claims": [{"name": "shared-gpu"}]}}
                    ],
                    "resourceClaims": [{"name": "shared-gpu", ref: claim}],
                }
            },
        },
    }


def test_dra_time_slicing_claim_is_found_and_stays_in_its_tenant(tmp_path: Path) -> None:
    docs = clean_cluster()
    docs += [_claim("team-c", "TimeSlicing"), _claim_user("team-c", "ts-share", "timesliced-gpu")]
    found = [f for f in _of(_scan(tmp_path, docs), "K8S-001") if "ResourceClaim" in f.resource]
    assert [f.resource for f in found] == ["k8s/ns/team-c/ResourceClaim/timesliced-gpu"]
    (claim,) = found
    # A ResourceClaim is namespaced: only pods of its namespace (one tenant) can hold it.
    assert claim.status is Status.PASS and claim.evidence["tenants"] == ["c"]
    assert claim.evidence["sharing"] == "dra-TimeSlicing"
    assert claim.evidence["policy_rule"] == "no-soft-sharing"
    assert claim.location is not None and claim.location.line is not None


def test_dra_mps_through_a_template_and_through_the_device_class(tmp_path: Path) -> None:
    template = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "shared-gpu", "namespace": "team-c"},
        "spec": {"spec": _claim("team-c", "MPS")["spec"]},
    }
    device_class = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "gpu-timesliced.nvidia.com"},
        "spec": {"config": [{"opaque": _gpu_config("TimeSlicing")["opaque"]}]},
    }
    inherits = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "plain", "namespace": "team-c"},
        "spec": {
            "devices": {
                "requests": [
                    {"name": "gpu", "exactly": {"deviceClassName": "gpu-timesliced.nvidia.com"}}
                ]
            }
        },
    }
    docs = [*clean_cluster(), template, device_class, inherits]
    docs.append(_claim_user("team-c", "mps", "shared-gpu", template=True))
    found = {f.resource: f for f in _of(_scan(tmp_path, docs), "K8S-001") if "Claim" in f.resource}
    assert found["k8s/ns/team-c/ResourceClaimTemplate/shared-gpu"].evidence["sharing"] == "dra-MPS"
    assert (
        "each pod gets its own claim"
        in found["k8s/ns/team-c/ResourceClaimTemplate/shared-gpu"].message
    )
    assert found["k8s/ns/team-c/ResourceClaim/plain"].evidence["sharing"] == "dra-TimeSlicing"


def test_a_claim_without_sharing_or_for_another_driver_is_not_sharing(tmp_path: Path) -> None:
    other = _claim("team-c", "TimeSlicing")
    other["spec"]["devices"]["config"][0]["opaque"]["driver"] = "gpu.example.com"
    plain = _claim("team-c", "TimeSlicing")
    plain["metadata"]["name"] = "exclusive"
    plain["spec"]["devices"]["config"][0]["opaque"]["parameters"]["sharing"] = {
        "strategy": "SpacePartitioning"
    }
    findings = _of(_scan(tmp_path, [*clean_cluster(), other, plain]), "K8S-001")
    assert not [f for f in findings if "ResourceClaim" in f.resource]


def _hami_pod(namespace: str, name: str, **limits: int) -> Doc:
    # Tolerates gpu-2's tenant taint: the HAMi node is open to it (the mistake under test).
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"hami.io/gpu-scheduler-policy": "binpack"},
        },
        "spec": {
            "tolerations": [{"key": "tenant", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "ubuntu-container",
                    "image": "ubuntu:22.04",
                    "resources": {"limits": {"nvidia.com/gpu": 1, **limits}},
                }
            ],
        },
    }


def _hami_node(docs: list[Doc]) -> None:
    for doc in docs:
        if doc["kind"] == "Node" and doc["metadata"]["name"] == "gpu-2":
            doc["metadata"]["annotations"] = {
                "hami.io/node-nvidia-register": "GPU-0fc3eda5-e98b-a25b-5b0d-cf5c855d1448,10,"
                "81920,100,NVIDIA-NVIDIA H100 80GB HBM3,0,true:"
            }


def test_hami_shares_across_tenants_fail_on_the_node(tmp_path: Path) -> None:
    docs = clean_cluster()
    _hami_node(docs)
    docs.append(
        _hami_pod("team-b", "b-share", **{"nvidia.com/gpumem": 3000, "nvidia.com/gpucores": 30})
    )
    docs.append(_hami_pod("team-c", "c-share", **{"nvidia.com/gpumem-percentage": 50}))
    findings = _of(_scan(tmp_path, docs), "K8S-001")
    node = [f for f in findings if f.resource == "k8s/cluster/Node/gpu-2"]
    hami = [f for f in node if f.evidence.get("sharing") == "hami"]
    assert [f.status for f in hami] == [Status.FAIL]
    assert hami[0].evidence["tenants"] == ["b", "c"]
    # The tainted CC node gpu-1 is a HAMi GPU node too only if registered: it is not.
    assert not [f for f in findings if f.resource.endswith("gpu-1") and f.status is Status.FAIL]


def test_hami_whole_gpu_pods_do_not_share(tmp_path: Path) -> None:
    docs = clean_cluster()
    _hami_node(docs)
    docs.append(_hami_pod("team-b", "b-share", **{"nvidia.com/gpumem": 3000}))
    # examples/nvidia/use_exclusive_card.yaml: 100 % of memory and cores.
    docs.append(
        _hami_pod(
            "team-c",
            "c-whole",
            **{"nvidia.com/gpumem-percentage": 100, "nvidia.com/gpucores": 100},
        )
    )
    hami = [f for f in _of(_scan(tmp_path, docs), "K8S-001") if f.evidence.get("sharing") == "hami"]
    assert hami and all(f.status is Status.PASS for f in hami)


def test_hami_without_node_objects_is_judged_cluster_wide(tmp_path: Path) -> None:
    docs = [d for d in clean_cluster() if d["kind"] != "Node"]
    docs.append(_hami_pod("team-b", "b", **{"nvidia.com/gpucores": 30}))
    docs.append(_hami_pod("team-c", "c", **{"nvidia.com/gpumem": 1000}))
    hami = [f for f in _of(_scan(tmp_path, docs), "K8S-001") if f.evidence.get("sharing") == "hami"]
    assert [(f.resource, f.status) for f in hami] == [("k8s/cluster", Status.FAIL)]


def _trainer(docs: list[Doc]) -> Doc:
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "trainer":
            spec: Doc = doc["spec"]["template"]["spec"]
            return spec
    raise KeyError("trainer")


def test_confidential_containers_runtime_classes(tmp_path: Path) -> None:
    docs = clean_cluster()
    _trainer(docs)["runtimeClassName"] = "kata-qemu-nvidia-gpu-tdx"
    (ok,) = _of(_scan(tmp_path / "tdx", docs), "K8S-014")
    assert ok.status is Status.PASS and ok.evidence["policy_rule"] == "cc-containers-runtime"
    # kata-qemu-nvidia-gpu is Kata without a confidential VM: not a Confidential Container.
    _trainer(docs)["runtimeClassName"] = "kata-qemu-nvidia-gpu"
    (bad,) = _of(_scan(tmp_path / "kata", docs), "K8S-014")
    assert bad.status is Status.FAIL and "kata-qemu-nvidia-gpu," in bad.message
    # The right runtime class with GPUs from the regular device plugin still fails.
    _trainer(docs)["runtimeClassName"] = "kata-qemu-nvidia-gpu-snp"
    _trainer(docs)["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    (plain,) = _of(_scan(tmp_path / "plain", docs), "K8S-014")
    assert plain.status is Status.FAIL and "nvidia.com/pgpu" in plain.message


def test_no_namespaces_readable_is_not_evaluated() -> None:
    from gpufence.kubernetes.objects import ClusterState

    state = ClusterState(objects=(), unreadable={"Namespace": "403 Forbidden"})
    findings = list(scan_cluster(state).findings)
    for control in ("K8S-001", "K8S-014"):
        assert {f.status for f in _of(findings, control)} == {Status.NOT_EVALUATED}


def test_a_device_plugin_config_with_an_unquoted_date_is_still_read(tmp_path: Path) -> None:
    # The device plugin reads its config as JSON-like YAML: `reviewed: 2026-13-45` is a string to
    # it, and the sharing it configures applies. gpufence built a datetime and, for an impossible
    # date, crashed (exit 3); had it skipped the config, the sharing would have gone unseen.
    plain = clean_cluster()
    dated = clean_cluster()
    config = next(d for d in dated if d["kind"] == "ConfigMap")["data"]
    config["shared"] = "reviewed: 2026-13-45\n" + config["shared"]
    summary = [(f.control, f.resource, f.message) for f in _scan(tmp_path / "plain", plain)]
    assert [(f.control, f.resource, f.message) for f in _scan(tmp_path / "dated", dated)] == summary
    # Not vacuous: the config's time-slicing and its settings are what was judged.
    assert any(c == "K8S-002" and "config 'shared'" in m for c, _, m in summary)
    assert any(c == "K8S-001" and "ConfigMap/dp-config config 'shared'" in m for c, _, m in summary)
