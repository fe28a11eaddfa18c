"""Kubernetes objects for the plan: node labels/taints and per-tenant manifests.

Nodes (partial ``v1/Node`` objects for ``kubectl apply --server-side``): the GPU Operator's
``nvidia.com/mig.config`` and ``nvidia.com/cc.mode`` (``on``/``off``; ``ppcie`` for Hopper
protected-PCIe nodes, k8s-cc-manager), the device plugin's ``nvidia.com/device-plugin.config``,
``gpufence.io/pool``, and for nodes reserved to one tenant ``gpufence.io/tenant`` plus the taint
``gpufence.io/tenant=<tenant>:NoSchedule``.

Tenants: a Namespace, a ResourceQuota on ``requests.nvidia.com/gpu`` and
``requests.nvidia.com/mig-<profile>`` (mixed strategy; ``+`` becomes ``.`` as the device plugin
names them), and a PodTemplate with the node affinity and tolerations the tenant's pods need.
Where all of a tenant's GPUs sit on its own nodes, the Namespace also carries the PodNodeSelector
and PodTolerationRestriction annotations (those admission plugins must be enabled).

CC nodes follow NVIDIA's Confidential Containers docs (policy rules cc-one-cvm-per-node and
cc-containers-runtime): one confidential VM per CC node, so the tenant's PodTemplate
``gpufence-cc-workload`` runs with ``runtimeClassName: kata-qemu-nvidia-gpu-snp`` (or ``-tdx``,
from the pool's ``host.cpu_tee``) and requests every GPU of the node as ``nvidia.com/pgpu`` (plus
the four NVSwitches as ``nvidia.com/nvswitch`` on Hopper protected-PCIe nodes); the quota counts
``requests.nvidia.com/pgpu``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from gpufence.catalog import GpuModel
from gpufence.model.inventory import CcMode, CcMultiGpuMode, CpuTee
from gpufence.plan.emit.device_plugin import config_key
from gpufence.plan.emit.names import dns_label, label_value
from gpufence.plan.types import NodePlan, Plan, PoolPlan

__all__ = ["POOL_LABEL", "TENANT_LABEL", "mig_resource", "node_objects", "tenant_manifests"]

TENANT_LABEL = "gpufence.io/tenant"
POOL_LABEL = "gpufence.io/pool"
MECHANISM_LABEL = "gpufence.io/mechanism"
QUOTA = "gpufence-gpus"
TEMPLATE = "gpufence-gpu-workload"
CC_TEMPLATE = "gpufence-cc-workload"
PGPU = "nvidia.com/pgpu"
NVSWITCH = "nvidia.com/nvswitch"
HGX_HOPPER_NVSWITCHES = 4
"""Protected PCIe passes the 8 GPUs and 4 NVSwitches of an HGX Hopper board to one CVM."""
RUNTIME_CLASS = {
    CpuTee.SEV_SNP: "kata-qemu-nvidia-gpu-snp",
    CpuTee.TDX: "kata-qemu-nvidia-gpu-tdx",
}
RUNTIME_CLASS_NOTE = "gpufence.io/runtime-class"
_CC_LABEL = "nvidia.com/cc.mode"


def mig_resource(pool: PoolPlan, profile: str) -> str:
    """Extended resource a MIG instance is advertised as (device plugin internal/rm/rm.go)."""
    if pool.mig_strategy == "single":
        return "nvidia.com/gpu"
    return "nvidia.com/mig-" + profile.replace("+", ".")


def _cc_label(node: NodePlan) -> str:
    if node.cc_mode is not CcMode.ON:
        return "off"
    return "ppcie" if node.cc_multi_gpu is CcMultiGpuMode.PROTECTED_PCIE else "on"


def node_objects(
    plan: Plan, mig_labels: Mapping[str, str], models: Mapping[str, GpuModel]
) -> list[dict[str, Any]]:
    """Node label/taint patches for every planned node (MIG config labels, tenant taints)."""
    objects = []
    for pool in plan.pools:
        model = models[pool.gpu_model]
        for node in pool.nodes:
            labels = {
                POOL_LABEL: label_value(pool.name),
                "nvidia.com/device-plugin.config": config_key(pool),
            }
            if node.name in mig_labels:
                labels["nvidia.com/mig.config"] = mig_labels[node.name]
            if model.cc.supports_cc:
                labels["nvidia.com/cc.mode"] = _cc_label(node)
            obj: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node.name, "labels": labels},
            }
            if node.exclusive:
                owner = dns_label(node.tenants[0])
                labels[TENANT_LABEL] = owner
                obj["spec"] = {
                    "taints": [{"key": TENANT_LABEL, "value": owner, "effect": "NoSchedule"}]
                }
            objects.append(obj)
    return objects


def tenant_manifests(
    plan: Plan, cpu_tee: Mapping[str, CpuTee | None] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Tenant name -> its Namespace, ResourceQuota and PodTemplate(s).

    ``cpu_tee``: pool name -> the CPU TEE of its hosts (picks the Confidential Containers
    runtime class for CC nodes).
    """
    resources: dict[str, Counter[str]] = {t.tenant: Counter() for t in plan.tiers}
    pools: dict[str, dict[str, None]] = {t.tenant: {} for t in plan.tiers}
    nodes: dict[str, list[NodePlan]] = {t.tenant: [] for t in plan.tiers}
    confidential: dict[str, _CcShape] = {}
    for pool in plan.pools:
        for node in pool.nodes:
            for tenant in node.tenants:
                pools[tenant][label_value(pool.name)] = None
                nodes[tenant].append(node)
            if node.cc_mode is CcMode.ON:
                # One CVM per CC node: its tenant holds every GPU of the node as pgpu.
                owner = node.tenants[0]
                resources[owner][PGPU] += len(node.gpus)
                shape = confidential.setdefault(owner, _CcShape())
                shape.gpus = max(shape.gpus, len(node.gpus))
                shape.ppcie |= node.cc_multi_gpu is CcMultiGpuMode.PROTECTED_PCIE
                shape.tees.add((cpu_tee or {}).get(pool.name))
                continue
            for gpu in node.gpus:
                if gpu.tenant is not None:
                    resources[gpu.tenant]["nvidia.com/gpu"] += 1
                for instance in gpu.instances:
                    resources[instance.tenant][mig_resource(pool, instance.profile)] += 1
    manifests = {}
    for tier in plan.tiers:
        tenant = tier.tenant
        mine = nodes[tenant]
        manifests[tenant] = _manifests(
            tenant,
            plan.mechanism_of(tenant).value,
            resources[tenant],
            list(pools[tenant]),
            own_nodes=[n for n in mine if n.exclusive],
            only_own=bool(mine) and all(n.exclusive for n in mine),
            cc_everywhere=bool(mine) and all(n.cc_mode is CcMode.ON for n in mine),
            cc=confidential.get(tenant),
        )
    return manifests


class _CcShape:
    """What a tenant's CC nodes need in its Confidential Container pod template."""

    def __init__(self) -> None:
        self.gpus = 0
        self.ppcie = False
        self.tees: set[CpuTee | None] = set()


def _cc_template(namespace: str, spec: dict[str, Any], cc: _CcShape) -> dict[str, Any]:
    limits: dict[str, str] = {PGPU: str(cc.gpus)}
    if cc.ppcie:
        limits[NVSWITCH] = str(HGX_HOPPER_NVSWITCHES)
    known = sorted(t.value for t in cc.tees if t is not None)
    runtime = RUNTIME_CLASS[CpuTee(known[0])] if len(known) == 1 else RUNTIME_CLASS[CpuTee.SEV_SNP]
    metadata: dict[str, Any] = {"name": CC_TEMPLATE, "namespace": namespace}
    if len(known) != 1 or None in cc.tees:
        metadata["annotations"] = {
            RUNTIME_CLASS_NOTE: "set kata-qemu-nvidia-gpu-snp (AMD SEV-SNP) or "
            "kata-qemu-nvidia-gpu-tdx (Intel TDX): declare host.cpu_tee of the CC pools"
        }
    cc_spec = {
        **spec,
        "runtimeClassName": runtime,
        "containers": [
            {
                "name": "workload",
                "image": "REPLACE-WITH-YOUR-IMAGE",
                "resources": {"limits": limits},
            }
        ],
    }
    terms = cc_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = [
        e for e in terms["nodeSelectorTerms"][0]["matchExpressions"] if e["key"] != _CC_LABEL
    ]
    expressions.append({"key": _CC_LABEL, "operator": "In", "values": ["on", "ppcie"]})
    cc_spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }
    }
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": metadata,
        "template": {"metadata": {"labels": {TENANT_LABEL: namespace}}, "spec": cc_spec},
    }


def _manifests(
    tenant: str,
    mechanism: str,
    resources: Counter[str],
    pools: list[str],
    *,
    own_nodes: list[NodePlan],
    only_own: bool,
    cc_everywhere: bool,
    cc: _CcShape | None = None,
) -> list[dict[str, Any]]:
    namespace = dns_label(tenant)
    toleration = {
        "key": TENANT_LABEL,
        "operator": "Equal",
        "value": namespace,
        "effect": "NoSchedule",
    }
    ns: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {TENANT_LABEL: namespace, MECHANISM_LABEL: mechanism},
        },
    }
    if only_own:
        ns["metadata"]["annotations"] = {
            "scheduler.alpha.kubernetes.io/node-selector": f"{TENANT_LABEL}={namespace}",
            "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([toleration]),
            "scheduler.alpha.kubernetes.io/tolerationsWhitelist": json.dumps([toleration]),
        }
    # No placement: a zero quota keeps the namespace off the GPUs entirely.
    hard = {f"requests.{name}": str(n) for name, n in sorted(resources.items())} or {
        "requests.nvidia.com/gpu": "0"
    }
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA, "namespace": namespace},
        "spec": {"hard": hard},
    }
    docs = [ns, quota]
    if pools:
        expressions: list[dict[str, Any]] = [{"key": POOL_LABEL, "operator": "In", "values": pools}]
        if only_own:
            expressions.append({"key": TENANT_LABEL, "operator": "In", "values": [namespace]})
        if cc_everywhere:
            expressions.append({"key": _CC_LABEL, "operator": "In", "values": ["on", "ppcie"]})
        elif cc is not None:
            # The plain (runc) template must not land on the tenant's CC nodes.
            expressions.append({"key": _CC_LABEL, "operator": "NotIn", "values": ["on", "ppcie"]})
        spec: dict[str, Any] = {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": expressions}]
                    }
                }
            },
            "containers": [{"name": "workload", "image": "REPLACE-WITH-YOUR-IMAGE"}],
        }
        if own_nodes:
            spec["tolerations"] = [toleration]
        if not cc_everywhere:
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": TEMPLATE, "namespace": namespace},
                    "template": {
                        "metadata": {"labels": {TENANT_LABEL: namespace}},
                        "spec": spec,
                    },
                }
            )
        if cc is not None:
            docs.append(_cc_template(namespace, spec, cc))
    return docs
