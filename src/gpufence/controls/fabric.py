"""Fabric segmentation controls from the declared networks."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import joined, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.fabric.reach import components, tenant_entries
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import NetworkPurpose, TenantIsolation
from gpufence.model.snapshot import Snapshot

_PLANE_OF = {
    NetworkPurpose.COMPUTE: "compute",
    NetworkPurpose.STORAGE: "storage",
    NetworkPurpose.MANAGEMENT: "management",
    NetworkPurpose.OOB: "management",
}
_OPENSM = "https://github.com/linux-rdma/opensm/blob/master/doc/partition-config.txt"
_NVIDIA_PKEY = "https://docs.nvidia.com/networking/display/ufmenterpriseumlatest/appendix+%E2%80%93+partitioning"


@control(
    id="FAB-001",
    title="Compute, storage and management share one flat network",
    plane=Plane.FAB,
    severity=Severity.HIGH,
    failure_mode="When planes share a segment (or are routed together), a foothold on the "
    "compute fabric reaches storage targets and the management plane directly.",
    remediation="Keep compute, storage and management on separate fabrics or VRFs with no "
    "routes between them; use limited-member PKeys for shared storage on InfiniBand.",
    references=(
        _NVIDIA_PKEY,
        "https://media.defense.gov/2023/Jun/14/2003241405/-1/-1/0/CSI_HARDEN_BMCS.PDF",
    ),
)
def flat_network(snap: Snapshot) -> Iterator[Outcome]:
    nets = snap.networks
    if not nets:
        yield Outcome(
            Status.NOT_EVALUATED,
            "cluster",
            "the inventory declares no networks; fabric separation cannot be judged",
            {"missing": "networks"},
            ("networks",),
        )
        return
    for members in components(nets.values()):
        planes: dict[str, list[str]] = {}
        for name in members:
            for purpose in nets[name].purposes:
                if purpose in _PLANE_OF:
                    planes.setdefault(_PLANE_OF[purpose], []).append(name)
        head = members[0]
        pointer = snap.pointer_of("networks", head)
        evidence = {"networks": list(members), "planes": planes}
        where = head if len(members) == 1 else f"{head} (routed with {joined(members[1:])})"
        if len(planes) > 1:
            yield Outcome(
                Status.FAIL,
                f"network/{head}",
                f"{where} carries {joined(sorted(planes))}",
                evidence,
                pointer,
                severity=Severity.HIGH if "management" in planes else Severity.MEDIUM,
            )
        else:
            yield Outcome(
                Status.PASS,
                f"network/{head}",
                f"{where} carries "
                + (joined(sorted(planes)) if planes else "no infrastructure plane"),
                evidence,
                pointer,
            )


@control(
    id="FAB-002",
    title="Tenants share a network without per-tenant isolation",
    plane=Plane.FAB,
    severity=Severity.HIGH,
    failure_mode="On a shared segment without PKeys or VLAN/VXLAN/VRF per tenant, one tenant's "
    "hosts can reach another's (RDMA into their memory regions, lateral movement).",
    remediation="Give each tenant its own PKey on InfiniBand (full member of its own, limited "
    "member of shared storage) and its own VLAN/VNI/VRF on Ethernet.",
    references=(_OPENSM, _NVIDIA_PKEY),
)
def shared_network_without_isolation(snap: Snapshot) -> Iterator[Outcome]:
    by_network: dict[str, set[str]] = {}
    for entry in tenant_entries(snap.inventory):
        by_network.setdefault(entry.network, set()).add(entry.tenant)
    shared = {name: tenants for name, tenants in by_network.items() if len(tenants) > 1}
    if not shared:
        yield not_applicable("no network carries more than one tenant")
    for name, tenants in sorted(shared.items()):
        net = snap.networks[name]
        pointer = snap.pointer_of("networks", name)
        evidence = {"tenants": sorted(tenants), "kind": net.kind.value}
        if net.tenant_isolation is None:
            yield Outcome(
                Status.NOT_EVALUATED,
                f"network/{name}",
                f"{len(tenants)} tenants share {name}; tenant_isolation is not declared",
                {**evidence, "missing": "tenant_isolation"},
                pointer,
            )
            continue
        isolated = net.tenant_isolation is not TenantIsolation.NONE
        yield Outcome(
            Status.PASS if isolated else Status.FAIL,
            f"network/{name}",
            f"{joined(sorted(tenants))} share {name} with tenant isolation "
            f"{net.tenant_isolation.value}",
            {**evidence, "tenant_isolation": net.tenant_isolation.value},
            (*pointer, "tenant_isolation"),
        )
