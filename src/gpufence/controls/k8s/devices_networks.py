"""Device and network reach across tenants (K8S-010, K8S-011): DRA admin access and shared
secondary networks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from gpufence.controls._common import joined
from gpufence.controls.engine import Outcome
from gpufence.controls.k8s._base import (
    _DRA,
    _MULTUS,
    CLUSTER,
    WORKLOAD_KINDS,
    _k8s_control,
    _namespace_control,
    _not_applicable,
    _not_evaluated,
)
from gpufence.kubernetes.objects import K8sObject
from gpufence.kubernetes.view import (
    DRA_ADMIN_LABEL,
    DRA_ADMIN_LABEL_OLD,
    NETWORKS_ANNOTATION,
    K8sView,
    PodSpec,
    dig,
)
from gpufence.model.findings import Plane, Severity, Status

# -- DRA admin access and secondary networks ---------------------------------------------


@_k8s_control(
    id="K8S-010",
    title="DRA admin access to devices from a tenant namespace",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="An adminAccess ResourceClaim reaches devices already allocated to other pods "
    "(monitoring-level access to every tenant's GPUs); only admin namespaces may carry it.",
    remediation="Remove the resource.kubernetes.io/admin-access label from tenant namespaces and "
    "adminAccess: true from their ResourceClaims; keep admin access to operator namespaces.",
    references=(_DRA, "https://kubernetes.io/docs/concepts/security/hardening-guide/"),
)
def dra_admin_access(view: K8sView) -> Iterator[Outcome]:
    claims: dict[str, list[tuple[K8sObject, tuple[str | int, ...]]]] = {}
    for obj in view.state.of("ResourceClaim", "ResourceClaimTemplate"):
        base: tuple[str | int, ...] = (
            ("spec", "spec") if obj.kind == "ResourceClaimTemplate" else ("spec",)
        )
        for i, req in enumerate(dig(obj.body, *base, "devices", "requests") or []):
            for sub in ((), ("exactly",)):
                if dig(req, *sub, "adminAccess") is True:
                    ptr = (*base, "devices", "requests", i, *sub, "adminAccess")
                    claims.setdefault(obj.namespace or "default", []).append((obj, ptr))

    def judge(ns: K8sObject) -> Outcome:
        labelled = "true" in (ns.labels.get(DRA_ADMIN_LABEL), ns.labels.get(DRA_ADMIN_LABEL_OLD))
        found = claims.get(ns.name, [])
        problems = ([f"namespace labelled {DRA_ADMIN_LABEL}=true"] if labelled else []) + [
            f"{obj.kind} {obj.name} requests adminAccess" for obj, _ in found
        ]
        return Outcome(
            Status.FAIL if problems else Status.PASS,
            ns.ref,
            "; ".join(problems) or "no DRA admin access",
            {"claims": [obj.name for obj, _ in found], "admin_label": labelled},
        )

    yield from _namespace_control(view, ("ResourceClaim", "ResourceClaimTemplate"), judge)


def _networks(pod: PodSpec) -> list[tuple[str, str]]:
    """(namespace, name) of the secondary networks a pod attaches (Multus annotation)."""
    text = pod.annotations.get(NETWORKS_ANNOTATION, "").strip()
    if not text:
        return []
    out: list[tuple[str, str]] = []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return []
        return [
            (str(item.get("namespace") or pod.namespace), str(item["name"]))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, Mapping) and item.get("name")
        ]
    for part in text.split(","):
        ref = part.strip().split("@", 1)[0]
        if ref:
            ns, _, name = ref.rpartition("/")
            out.append((ns or pod.namespace, name))
    return out


def _segment(nad: K8sObject) -> str:
    """What makes two NetworkAttachmentDefinitions one L2/RDMA segment."""
    try:
        config = json.loads(str(dig(nad.body, "spec", "config") or "{}"))
    except json.JSONDecodeError:
        config = {}
    if not isinstance(config, Mapping):
        config = {}
    resource = nad.annotations.get("k8s.v1.cni.cncf.io/resourceName", "")
    parts = [str(config.get(k)) for k in ("type", "master", "vlan", "pkey") if config.get(k)]
    if resource and any(config.get(k) is not None for k in ("vlan", "pkey")):
        return f"{resource}:{':'.join(parts)}"
    return f"{nad.namespace or 'default'}/{nad.name}"


@_k8s_control(
    id="K8S-011",
    title="Secondary (RDMA/SR-IOV) network attached by more than one tenant",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="A Multus/SR-IOV network shared by tenants is one L2/RDMA segment: NetworkPolicy "
    "does not apply to it, so tenants reach each other's pods and RDMA queue pairs directly.",
    remediation="Give each tenant its own NetworkAttachmentDefinition in its namespace with its "
    "own VLAN or InfiniBand PKey, and never reference another namespace's network.",
    references=(_MULTUS, "https://github.com/k8snetworkplumbingwg/sriov-network-device-plugin"),
)
def shared_secondary_network(view: K8sView) -> Iterator[Outcome]:
    why = view.state.why_unreadable(
        "Namespace", "NetworkAttachmentDefinition.k8s.cni.cncf.io", *WORKLOAD_KINDS
    )
    if why:
        yield _not_evaluated(CLUSTER, f"cannot tell who attaches which network: {why}")
        return
    nads = {
        (n.namespace or "default", n.name): n
        for n in view.state.of("NetworkAttachmentDefinition.k8s.cni.cncf.io")
    }
    users: dict[str, set[str]] = {}
    owners: dict[str, K8sObject | None] = {}
    for pod in view.tenant_pods:
        tenant = view.tenant_of(pod.namespace)
        for ns, name in _networks(pod):
            nad = nads.get((ns, name))
            segment = _segment(nad) if nad else f"{ns}/{name}"
            users.setdefault(segment, set()).add(str(tenant))
            owners.setdefault(segment, nad)
            owner_tenant = view.tenant_of(ns)
            if owner_tenant and owner_tenant != tenant:
                users[segment].add(owner_tenant)
    if not users:
        yield _not_applicable("no tenant pod attaches a secondary network")
        return
    for segment, tenants in sorted(users.items()):
        nad = owners[segment]
        yield Outcome(
            Status.FAIL if len(tenants) > 1 else Status.PASS,
            nad.ref if nad else f"k8s/network/{segment}",
            f"network {segment} attached by tenant(s) {joined(sorted(tenants))}",
            {"tenants": sorted(tenants), "segment": segment},
        )
