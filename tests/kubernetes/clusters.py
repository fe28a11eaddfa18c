"""A hand-written multi-tenant GPU cluster (clean) and one planted mistake per K8S control.

Tenants: team-a (confidential, whole GPUs on the CC node gpu-1), team-b (public, time-sliced GPUs
on gpu-2, an SR-IOV network of its own), team-c (public, no GPU pods). The GPU Operator lives in
gpu-operator (not a tenant namespace: its privileged DaemonSet is not a finding).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

_SHARED_CONFIG = {
    "version": "v1",
    "flags": {"migStrategy": "none"},
    "sharing": {
        "timeSlicing": {
            "renameByDefault": True,
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
        }
    },
}


def _namespace(name: str, tenant: str | None, **labels: str) -> Doc:
    all_labels = dict(labels)
    if tenant:
        all_labels["gpufence.io/tenant"] = tenant
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": all_labels},
    }


def _tenant_namespace(name: str, tenant: str, sensitivity: str) -> Doc:
    return _namespace(
        name,
        tenant,
        **{
            "gpufence.io/data-sensitivity": sensitivity,
            "pod-security.kubernetes.io/enforce": "baseline",
            "policy.sigstore.dev/include": "true",
        },
    )


def _node(name: str, tenant: str, **labels: str) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"nvidia.com/gpu.present": "true", "tenant": tenant, **labels},
        },
        "spec": {"taints": [{"key": "tenant", "value": tenant, "effect": "NoSchedule"}]},
        "status": {"allocatable": {"nvidia.com/gpu": "8", "cpu": "96"}},
    }


def _deny_all(namespace: str) -> Doc:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _quota(namespace: str, **hard: str) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpu", "namespace": namespace},
        "spec": {"hard": hard},
    }


def _deployment(namespace: str, name: str, tenant: str, pod: Doc, **annotations: str) -> Doc:
    spec = {
        "nodeSelector": {"tenant": tenant},
        "tolerations": [{"key": "tenant", "value": tenant, "effect": "NoSchedule"}],
        **pod,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "template": {"metadata": {"annotations": annotations}, "spec": spec},
        },
    }


def clean_cluster() -> list[Doc]:
    return [
        _tenant_namespace("team-a", "a", "confidential"),
        _tenant_namespace("team-b", "b", "public"),
        _tenant_namespace("team-c", "c", "public"),
        _namespace("gpu-operator", None),
        _node("gpu-1", "a", **{"nvidia.com/cc.mode": "on", "nvidia.com/cc.mode.state": "on"}),
        _node("gpu-2", "b", **{"nvidia.com/device-plugin.config": "shared"}),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dp-config", "namespace": "gpu-operator"},
            "data": {
                "default": yaml.safe_dump({"version": "v1", "sharing": {"timeSlicing": {}}}),
                "shared": yaml.safe_dump(_SHARED_CONFIG),
            },
        },
        {
            "apiVersion": "nvidia.com/v1",
            "kind": "ClusterPolicy",
            "metadata": {"name": "cluster-policy"},
            "spec": {
                "devicePlugin": {"config": {"name": "dp-config", "default": "default"}},
                "toolkit": {
                    "env": [
                        {
                            "name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED",
                            "value": "false",
                        }
                    ]
                },
                "ccManager": {"enabled": True, "defaultMode": "on"},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "nvidia-device-plugin", "namespace": "gpu-operator"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "plugin", "securityContext": {"privileged": True}}],
                        "volumes": [
                            {"name": "dp", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}
                        ],
                    }
                }
            },
        },
        _deployment(
            "team-a",
            "trainer",
            "a",
            {
                # NVIDIA Confidential Containers: TEE-aware Kata runtime class, passthrough GPU.
                "runtimeClassName": "kata-qemu-nvidia-gpu-snp",
                "nodeSelector": {"tenant": "a", "nvidia.com/cc.mode": "on"},
                "containers": [{"name": "train", "resources": {"limits": {"nvidia.com/pgpu": 1}}}],
                "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}],
            },
        ),
        _deployment(
            "team-b",
            "inference",
            "b",
            {
                "containers": [
                    {"name": "serve", "resources": {"limits": {"nvidia.com/gpu.shared": 1}}}
                ]
            },
            **{"k8s.v1.cni.cncf.io/networks": "rdma-b"},
        ),
        _deployment("team-c", "web", "c", {"containers": [{"name": "web"}]}),
        _deny_all("team-a"),
        _deny_all("team-b"),
        _deny_all("team-c"),
        _quota("team-a", **{"requests.nvidia.com/pgpu": "8"}),
        _quota("team-b", **{"requests.nvidia.com/gpu.shared": "4", "requests.nvidia.com/gpu": "0"}),
        _quota("team-c", **{"requests.nvidia.com/gpu": "2"}),
        {
            "apiVersion": "policy.sigstore.dev/v1beta1",
            "kind": "ClusterImagePolicy",
            "metadata": {"name": "signed-images"},
            "spec": {"images": [{"glob": "**"}], "mode": "enforce"},
        },
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {
                "name": "rdma-b",
                "namespace": "team-b",
                "annotations": {"k8s.v1.cni.cncf.io/resourceName": "nvidia.com/cx7_sriov"},
            },
            "spec": {"config": json.dumps({"type": "sriov", "vlan": 100})},
        },
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "gpu-claim", "namespace": "team-a"},
            "spec": {
                "devices": {
                    "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]
                }
            },
        },
    ]


def _find(docs: list[Doc], kind: str, name: str, namespace: str | None = None) -> Doc:
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == kind and meta["name"] == name and meta.get("namespace") == namespace:
            return doc
    raise KeyError((kind, name, namespace))


def _pod_spec(docs: list[Doc], namespace: str, name: str) -> Doc:
    spec: Doc = _find(docs, "Deployment", name, namespace)["spec"]["template"]["spec"]
    return spec


def _dp_shared(docs: list[Doc], **changes: Any) -> None:
    config = copy.deepcopy(_SHARED_CONFIG)
    config["sharing"]["timeSlicing"].update(changes)
    _find(docs, "ConfigMap", "dp-config", "gpu-operator")["data"]["shared"] = yaml.safe_dump(config)


def _k8s001(docs: list[Doc]) -> None:
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sneaky", "namespace": "team-c"},
            "spec": {
                "nodeName": "gpu-2",
                "containers": [{"name": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
            },
        }
    )


def _k8s005(docs: list[Doc]) -> None:
    _pod_spec(docs, "team-b", "inference")["containers"][0]["env"] = [
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}
    ]
    _find(docs, "ClusterPolicy", "cluster-policy")["spec"]["toolkit"]["env"] = []


def _k8s014(docs: list[Doc]) -> None:
    # The confidential tenant's trainer falls back to runc and the regular device plugin.
    spec = _pod_spec(docs, "team-a", "trainer")
    spec.pop("runtimeClassName")
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    _find(docs, "ResourceQuota", "gpu", "team-a")["spec"]["hard"] = {"requests.nvidia.com/gpu": "8"}


def _k8s011(docs: list[Doc]) -> None:
    spec = _find(docs, "Deployment", "web", "team-c")["spec"]["template"]
    spec["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/networks": "team-b/rdma-b"}


PLANTED: dict[str, Callable[[list[Doc]], None]] = {
    "K8S-001": _k8s001,
    "K8S-002": lambda d: _dp_shared(d, failRequestsGreaterThanOne=False),
    "K8S-003": lambda d: _pod_spec(d, "team-b", "inference")["containers"][0].update(
        securityContext={"privileged": True}
    ),
    "K8S-004": lambda d: _pod_spec(d, "team-b", "inference").update(
        volumes=[{"name": "dev", "hostPath": {"path": "/dev/nvidia0"}}]
    ),
    "K8S-005": _k8s005,
    "K8S-006": lambda d: d.remove(_find(d, "NetworkPolicy", "default-deny", "team-a")),
    "K8S-007": lambda d: _find(d, "Namespace", "team-b")["metadata"]["labels"].pop(
        "pod-security.kubernetes.io/enforce"
    ),
    "K8S-008": lambda d: d.remove(_find(d, "ResourceQuota", "gpu", "team-a")),
    "K8S-009": lambda d: _find(d, "Namespace", "team-b")["metadata"]["labels"].pop(
        "policy.sigstore.dev/include"
    ),
    "K8S-010": lambda d: _find(d, "ResourceClaim", "gpu-claim", "team-a")["spec"]["devices"][
        "requests"
    ][0]["exactly"].update(adminAccess=True),
    "K8S-011": _k8s011,
    # The CC mode switch failed on the confidential tenant's node.
    "K8S-012": lambda d: _find(d, "Node", "gpu-1")["metadata"]["labels"].update(
        {"nvidia.com/cc.mode.state": "failed"}
    ),
    "K8S-013": lambda d: _dp_shared(d, renameByDefault=False),
    "K8S-014": _k8s014,
}


def planted(control: str) -> list[Doc]:
    docs = clean_cluster()
    PLANTED[control](docs)
    return docs


def write_cluster(directory: Path, docs: list[Doc]) -> Path:
    """Write ``docs`` as Helm-style multi-document YAML, split over two files."""
    directory.mkdir(parents=True, exist_ok=True)
    half = len(docs) // 2
    for name, part in (("a.yaml", docs[:half]), ("b.yaml", docs[half:])):
        text = "".join(f"---\n# Source: chart/templates/{name}\n" + yaml.safe_dump(d) for d in part)
        (directory / name).write_text(text, encoding="utf-8")
    return directory
