"""Fabric segmentation controls: declared networks, InfiniBand partitions, observed PKey tables.

FAB-001/002 read the declared networks; FAB-003..007 read the partitions.conf evidence that
``collect/fabric.py`` attaches (``network/<name>``) and the observed PKey tables written by
``gpufence fabric observe`` (``fabric/<name>``); FAB-008/009 read the L2/L3 segment graph of
``fabric/reach.py``. All pure: the files were read by the collector.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import joined, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.fabric.check import (
    ib_inputs,
    ib_plane_reports,
    l3_plane_reports,
    latest_observed,
    latest_partitions,
)
from gpufence.fabric.drift import drift
from gpufence.fabric.membership import FULL, PortType, SubnetPorts, program
from gpufence.fabric.partitions import DEFAULT_PKEY
from gpufence.fabric.reach import components, tenant_entries
from gpufence.fabric.records import PartitionsRecord
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import Network, NetworkKind, NetworkPurpose, TenantIsolation
from gpufence.model.snapshot import Pointer, Snapshot

_PLANE_OF = {
    NetworkPurpose.COMPUTE: "compute",
    NetworkPurpose.STORAGE: "storage",
    NetworkPurpose.MANAGEMENT: "management",
    NetworkPurpose.OOB: "management",
}
_CONTROL = {NetworkPurpose.MANAGEMENT, NetworkPurpose.OOB}
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


# -- InfiniBand partitions (partitions.conf through collect/fabric.py, observed tables) ----------

_OPENSM_PARTITIONS = "https://github.com/linux-rdma/opensm/blob/master/opensm/osm_prtn_config.c"
_OPENSM_PKEY = "https://github.com/linux-rdma/opensm/blob/master/opensm/osm_pkey.c"
_ISOLATION_CODES = {"PC040", "PC042"}  # the default partition: FAB-005
_FAIL_OPEN_CODES = {"PC001", "PC002"}  # parse errors and what causes them: FAB-003


def _ib_networks(snap: Snapshot) -> list[tuple[int, Network]]:
    return [
        (i, n) for i, n in enumerate(snap.inventory.networks) if n.kind is NetworkKind.INFINIBAND
    ]


def _partitions_or_reason(
    snap: Snapshot, index: int, net: Network
) -> tuple[PartitionsRecord | None, Outcome | None]:
    """The network's partitions.conf record, or the NOT_EVALUATED outcome saying why not."""
    found = latest_partitions(snap, net.name)
    if found is not None:
        return found[0], None
    pointer: Pointer = ("networks", index)
    if net.partitions_conf is None:
        reason = (
            f"network {net.name} declares no partitions_conf; OpenSM's partition policy is unknown"
        )
    else:
        reason = (
            f"partitions.conf {net.partitions_conf} of {net.name} was not collected (run "
            "`gpufence audit`, which reads it)"
        )
        pointer = (*pointer, "partitions_conf")
    return None, Outcome(
        Status.NOT_EVALUATED, f"network/{net.name}", reason, {"missing": "partitions_conf"}, pointer
    )


def _lint_items(
    record: PartitionsRecord, codes: set[str] | None, exclude: set[str]
) -> list[dict[str, object]]:
    return [
        d.model_dump(mode="json")
        for d in record.lint.diagnostics
        if (codes is None or d.code in codes) and d.code not in exclude and d.severity.rank > 0
    ]


def _where_in(record: PartitionsRecord, item: dict[str, object]) -> str:
    return f"{record.path}:{item['line']}:{item['column']}"


@control(
    id="FAB-003",
    title="partitions.conf fails open: OpenSM drops it and makes every port full",
    plane=Plane.FAB,
    severity=Severity.CRITICAL,
    failure_mode="One parse error (a bad GUID, a stray ';', CRLF line ends, even an empty file) "
    "makes OpenSM discard the whole file and apply Default=0x7fff:ALL=full: every tenant PKey "
    "disappears and every host can reach every other host, silently.",
    remediation="Fix every error `gpufence fabric lint` reports before the file reaches the SM; "
    "lint it in CI and check OpenSM's log for 'Partition configuration in error'.",
    references=(_OPENSM_PARTITIONS, _OPENSM),
)
def partitions_fail_open(snap: Snapshot) -> Iterator[Outcome]:
    networks = _ib_networks(snap)
    if not networks:
        yield not_applicable("no InfiniBand network in the inventory")
        return
    for index, net in networks:
        record, missing = _partitions_or_reason(snap, index, net)
        if missing is not None:
            yield missing
            continue
        assert record is not None
        pointer: Pointer = ("networks", index, "partitions_conf")
        errors = _lint_items(record, _FAIL_OPEN_CODES, set())
        evidence = {"file": record.path, "sha256": record.sha256, "diagnostics": errors}
        if record.fails_open:
            first = next(e for e in errors if e["code"] == "PC001")
            yield Outcome(
                Status.FAIL,
                f"network/{net.name}",
                f"{_where_in(record, first)}: {first['message']}; OpenSM will discard the file "
                "and make every port a full member of the default partition",
                evidence,
                pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                f"network/{net.name}",
                f"{record.path} parses as OpenSM 3.3.23 reads it",
                evidence,
                pointer,
            )


@control(
    id="FAB-004",
    title="partitions.conf says something other than what OpenSM reads",
    plane=Plane.FAB,
    severity=Severity.MEDIUM,
    failure_mode="OpenSM reads GUIDs without 0x as octal, splits lines over 4,094 bytes, matches "
    "keywords and memberships by prefix, ignores unknown flags and merges partitions that share "
    "a PKey: members are silently lost, limited or shared with another partition.",
    remediation="Fix the warnings of `gpufence fabric lint`: 0x-prefixed GUIDs, short lines, "
    "keywords and memberships spelled out, one PKey per partition, -W when using 'both'.",
    references=(_OPENSM_PARTITIONS, _OPENSM),
)
def partitions_silent_traps(snap: Snapshot) -> Iterator[Outcome]:
    networks = _ib_networks(snap)
    if not networks:
        yield not_applicable("no InfiniBand network in the inventory")
        return
    for index, net in networks:
        record, missing = _partitions_or_reason(snap, index, net)
        if missing is not None:
            yield missing
            continue
        assert record is not None
        pointer: Pointer = ("networks", index, "partitions_conf")
        items = _lint_items(record, None, _FAIL_OPEN_CODES | _ISOLATION_CODES)
        if not items:
            yield Outcome(
                Status.PASS,
                f"network/{net.name}",
                f"{record.path}: no silent parser traps",
                {"file": record.path},
                pointer,
            )
            continue
        first = items[0]
        merged = any(i["code"] == "PC033" for i in items)
        yield Outcome(
            Status.FAIL,
            f"network/{net.name}",
            f"{_where_in(record, first)}: {first['message']}"
            + (f" (+{len(items) - 1} more)" if len(items) > 1 else ""),
            {"file": record.path, "diagnostics": items},
            pointer,
            severity=Severity.HIGH if merged else None,
        )


@control(
    id="FAB-005",
    title="Default partition makes tenant ports full members",
    plane=Plane.FAB,
    severity=Severity.HIGH,
    failure_mode="A port that is a full member of the default partition 0x7fff can talk to every "
    "port of the subnet; with ALL=full (OpenSM's and UFM's default) tenant partitions isolate "
    "nothing.",
    remediation="Write 'Default=0x7fff, ipoib : ALL=limited, SELF=full ;' and give each tenant "
    "its own PKey with its ports as full members.",
    references=(_OPENSM, _NVIDIA_PKEY),
)
def default_partition_full(snap: Snapshot) -> Iterator[Outcome]:
    networks = _ib_networks(snap)
    if not networks:
        yield not_applicable("no InfiniBand network in the inventory")
        return
    for index, net in networks:
        record, missing = _partitions_or_reason(snap, index, net)
        if missing is not None:
            yield missing
            continue
        assert record is not None
        pointer: Pointer = ("networks", index, "partitions_conf")
        inputs = ib_inputs(snap, net.name)
        written = program(
            record.config(as_written=True), SubnetPorts(dict.fromkeys(inputs.owners, PortType.CA))
        )
        full_ports = sorted(
            f"{inputs.nodes[g]} 0x{g:016x} ({', '.join(inputs.owners[g]) or 'no tenant'})"
            for g, table in written.tables.items()
            if table.get(DEFAULT_PKEY, 0) & FULL and inputs.owners.get(g)
        )
        items = _lint_items(record, _ISOLATION_CODES, set())
        if items or full_ports:
            reason = items[0]["message"] if items else "tenant ports are full in 0x7fff"
            yield Outcome(
                Status.FAIL,
                f"network/{net.name}",
                f"{record.path}: {reason}"
                + (f"; tenant ports full in 0x7fff: {joined(full_ports[:5])}" if full_ports else "")
                + (f" (+{len(full_ports) - 5} more)" if len(full_ports) > 5 else ""),
                {"file": record.path, "diagnostics": items, "full_tenant_ports": full_ports},
                pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                f"network/{net.name}",
                f"{record.path}: ports are limited members of the default partition",
                {"file": record.path},
                pointer,
            )


@control(
    id="FAB-006",
    title="Tenant reaches another tenant over InfiniBand partitions",
    plane=Plane.FAB,
    severity=Severity.CRITICAL,
    failure_mode="Ports that share a PKey, one of them as a full member, can exchange RDMA "
    "traffic: a tenant full member of another tenant's partition (or both in a full default or "
    "storage partition) reaches that tenant's hosts and memory regions.",
    remediation="One PKey per tenant with only its ports as full members; shared services with "
    "tenant ports as limited members; re-run `gpufence fabric check` after every change.",
    references=(_OPENSM_PKEY, _NVIDIA_PKEY),
)
def ib_tenant_reach(snap: Snapshot) -> Iterator[Outcome]:
    planes = ib_plane_reports(snap)
    if not planes:
        yield not_applicable("no InfiniBand network in the inventory")
        return
    for plane in planes:
        observed = plane.basis.startswith("observed")
        resource = f"{'fabric' if observed else 'network'}/{plane.scope}"
        pointer = snap.pointer_of("networks", plane.scope)
        if not plane.evaluated:
            yield Outcome(
                Status.NOT_EVALUATED,
                resource,
                f"{plane.reason}",
                {"missing": "partitions_conf or ib_port_guids", "basis": plane.basis},
                pointer,
            )
            continue
        pairs = sorted({(f.source, f.target) for f in plane.reach if f.source < f.target})
        evidence = {
            "basis": plane.basis,
            "reach": [f.model_dump(mode="json") for f in plane.reach if f.source < f.target],
            "notes": list(plane.notes),
        }
        if pairs:
            first = next(f for f in plane.reach if (f.source, f.target) == pairs[0])
            yield Outcome(
                Status.FAIL,
                resource,
                f"{len(pairs)} tenant pair(s) can talk on {plane.scope} ({plane.basis}): "
                f"{first.source} <-> {first.target} via {first.path[0]}",
                evidence,
                pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                resource,
                f"no two tenants share a PKey with a full member on {plane.scope} ({plane.basis})",
                evidence,
                pointer,
            )


@control(
    id="FAB-007",
    title="Programmed PKey tables differ from the partitions.conf intent",
    plane=Plane.FAB,
    severity=Severity.HIGH,
    failure_mode="What the subnet manager programmed is what isolates tenants: a table that "
    "differs from the reviewed file means another file, a fail-open fallback, a UFM override "
    "or a rogue SMP write (M_Key 0 lets any root user rewrite PKey tables).",
    remediation="Find which SM and file programmed the fabric (sminfo, OpenSM log), re-apply the "
    "reviewed partitions.conf, set a non-zero M_Key with protection level 2 or more.",
    references=(_OPENSM_PKEY, _OPENSM),
)
def pkey_drift(snap: Snapshot) -> Iterator[Outcome]:
    networks = _ib_networks(snap)
    if not networks:
        yield not_applicable("no InfiniBand network in the inventory")
        return
    for index, net in networks:
        resource = f"fabric/{net.name}"
        pointer: Pointer = ("networks", index)
        found = latest_observed(snap, net.name)
        if found is None:
            yield Outcome(
                Status.NOT_EVALUATED,
                resource,
                f"no observed PKey tables for {net.name}; collect them with "
                f"`gpufence fabric observe {net.name}` and pass the file with --evidence",
                {"missing": "observed PKey tables"},
                pointer,
            )
            continue
        observed, origin = found
        record, missing = _partitions_or_reason(snap, index, net)
        if missing is not None:
            yield Outcome(
                Status.NOT_EVALUATED,
                resource,
                f"observed tables but nothing to compare them with: {missing.message}",
                {"missing": "partitions_conf"},
                pointer,
            )
            continue
        assert record is not None
        drifted, compared, note = drift(record.config(), observed)
        evidence = {
            "file": record.path,
            "observed": origin,
            "ports_compared": compared,
            "note": note,
            "drift": [
                {
                    "port": d.guid,
                    "node": d.node,
                    "expected": list(d.expected),
                    "observed": list(d.observed),
                }
                for d in drifted
            ],
        }
        if compared == 0:
            yield Outcome(
                Status.NOT_EVALUATED,
                resource,
                f"{origin} holds no PKey table to compare",
                {**evidence, "missing": "PKey tables"},
                pointer,
            )
        elif drifted:
            yield Outcome(
                Status.FAIL,
                resource,
                f"{len(drifted)} of {compared} port(s) differ from {record.path}: "
                + "; ".join(d.describe() for d in drifted[:3])
                + (f" (+{len(drifted) - 3} more)" if len(drifted) > 3 else ""),
                evidence,
                pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                resource,
                f"all {compared} observed PKey tables match {record.path}",
                evidence,
                pointer,
            )


# -- Ethernet/L3 and management planes (declared networks) ------------------------------------


@control(
    id="FAB-008",
    title="Tenant reaches another tenant over Ethernet or routed networks",
    plane=Plane.FAB,
    severity=Severity.HIGH,
    failure_mode="Networks joined by a route, a shared VXLAN VNI or a shared VRF are one "
    "reachability domain: a tenant on one reaches every tenant on the others (ACLs are not "
    "assumed).",
    remediation="Give each tenant its own VLAN/VNI and VRF; remove routes and VRF leaks between "
    "tenant segments (or declare a filtered path and verify the ACL).",
    references=(_NVIDIA_PKEY, "https://datatracker.ietf.org/doc/html/rfc7432"),
)
def l3_tenant_reach(snap: Snapshot) -> Iterator[Outcome]:
    if not snap.tenants:
        yield not_applicable("no tenants in the inventory")
        return
    plane = next(p for p in l3_plane_reports(snap) if p.plane == "ethernet")
    if not plane.evaluated:
        yield Outcome(
            Status.NOT_EVALUATED,
            "cluster",
            f"{plane.reason}",
            {"missing": "networks"},
            ("networks",),
        )
        return
    for name in sorted(snap.tenants):
        reach = [f for f in plane.reach if f.source == name]
        maybe = [f for f in plane.possible if f.source == name]
        pointer = snap.pointer_of("tenants", name)
        if reach:
            yield Outcome(
                Status.FAIL,
                f"tenant/{name}",
                f"{name} reaches {joined(sorted({f.target for f in reach}))} via "
                + " -> ".join(reach[0].path),
                {"reach": [f.model_dump(mode="json") for f in reach]},
                pointer,
            )
        elif maybe:
            yield Outcome(
                Status.NOT_EVALUATED,
                f"tenant/{name}",
                f"{name} reaches {joined(sorted({f.target for f in maybe}))} unless the shared "
                "networks declare tenant_isolation: " + " -> ".join(maybe[0].path),
                {
                    "missing": "tenant_isolation",
                    "possible": [f.model_dump(mode="json") for f in maybe],
                },
                pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                f"tenant/{name}",
                f"{name} reaches no other tenant over the declared networks",
                {},
                pointer,
            )


@control(
    id="FAB-009",
    title="Management or OOB network reachable from a tenant",
    plane=Plane.FAB,
    severity=Severity.CRITICAL,
    failure_mode="The management and out-of-band networks reach BMCs, switches, the subnet "
    "manager and provisioning: a tenant that reaches them can attack the whole cluster.",
    remediation="Keep management/OOB networks out of tenant VLANs, VNIs and VRFs, with no route "
    "or VRF leak from any network a tenant can send on.",
    references=(
        "https://media.defense.gov/2023/Jun/14/2003241405/-1/-1/0/CSI_HARDEN_BMCS.PDF",
        _NVIDIA_PKEY,
    ),
)
def management_reachable(snap: Snapshot) -> Iterator[Outcome]:
    control_nets = [n for n in snap.inventory.networks if set(n.purposes) & _CONTROL]
    if not control_nets:
        yield not_applicable("no management or OOB network in the inventory")
        return
    plane = next(p for p in l3_plane_reports(snap) if p.plane == "oob")
    for net in control_nets:
        reach = [f for f in plane.reach if f.target == net.name]
        maybe = [f for f in plane.possible if f.target == net.name]
        pointer = snap.pointer_of("networks", net.name)
        if reach:
            yield Outcome(
                Status.FAIL,
                f"network/{net.name}",
                f"{joined(sorted({f.source for f in reach}))} reach(es) {net.name}: "
                + " -> ".join(reach[0].path),
                {"reach": [f.model_dump(mode="json") for f in reach]},
                pointer,
            )
        elif maybe:
            yield Outcome(
                Status.NOT_EVALUATED,
                f"network/{net.name}",
                f"{joined(sorted({f.source for f in maybe}))} reach(es) {net.name} unless the "
                "shared networks declare tenant_isolation",
                {
                    "missing": "tenant_isolation",
                    "possible": [f.model_dump(mode="json") for f in maybe],
                },
                pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                f"network/{net.name}",
                f"no tenant network reaches {net.name}",
                {},
                pointer,
            )
