"""``gpufence fabric check``: per plane, which tenant can reach which, and the path (pure).

Planes:

- **infiniband**, per InfiniBand network: the PKey tables OpenSM programs from the subnet's
  partitions.conf (replayed on the inventory's port GUIDs, or on the observed subnet when one was
  collected) and, when collected, the PKey tables actually read back; tenants own the ports of
  their nodes (``ib_port_guids``);
- **ethernet** (L2/L3): the declared networks joined by routes, VNIs and VRFs
  (:func:`~gpufence.fabric.reach.plane_graph`);
- **oob**: the same graph, asking which tenant reaches a management or OOB network.

Input is a snapshot whose evidence the fabric collector filled (``collect/fabric.py``); output is
a :class:`FabricReport` that the CLI renders and the FAB controls read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from gpufence._frozen import Frozen
from gpufence.errors import InputError
from gpufence.fabric.emit import guid_value
from gpufence.fabric.ib import IbVerdict, tenant_reach
from gpufence.fabric.membership import PortType, SubnetPorts, program
from gpufence.fabric.observed import ObservedFabric
from gpufence.fabric.reach import INFRA_PREFIX, plane_graph, tenant_entries
from gpufence.fabric.records import PartitionsRecord, observed_of, partitions_of
from gpufence.fabric.segments import Attachment, SegmentGraph
from gpufence.model.inventory import NetworkKind
from gpufence.model.snapshot import Snapshot

__all__ = [
    "FabricReport",
    "IbPlaneInputs",
    "PlaneReport",
    "ReachFinding",
    "fabric_report",
    "format_text",
    "ib_inputs",
    "ib_plane_reports",
    "l3_plane_reports",
    "latest_observed",
    "latest_partitions",
]

Plane = Literal["infiniband", "ethernet", "oob"]


class ReachFinding(Frozen):
    """One tenant reaching another (or a management/OOB network), with the steps that prove it."""

    source: str = Field(description="The tenant that reaches.")
    target: str = Field(description="The tenant (or management/OOB network) reached.")
    path: tuple[str, ...] = Field(description="Steps that prove it, in order.")


class PlaneReport(Frozen):
    """Who reaches whom on one plane (InfiniBand network, Ethernet/L3 or OOB) and on what basis."""

    plane: Plane
    scope: str = Field(description="The InfiniBand network, or 'declared networks'.")
    basis: str = Field(description="What the verdict rests on.")
    evaluated: bool
    reason: str | None = Field(default=None, description="Why not evaluated, when not.")
    tenants: tuple[str, ...] = ()
    reach: tuple[ReachFinding, ...] = ()
    possible: tuple[ReachFinding, ...] = Field(
        default=(),
        description="Reach only if shared networks without declared tenant_isolation are flat.",
    )
    notes: tuple[str, ...] = ()


class FabricReport(Frozen):
    """The reachability report of every plane of an inventory."""

    inventory: str
    tenants: tuple[str, ...]
    planes: tuple[PlaneReport, ...]

    @property
    def leaks(self) -> bool:
        """Whether any plane has a tenant reaching what it must not."""
        return any(p.reach for p in self.planes)


def latest_partitions(snap: Snapshot, network: str) -> tuple[PartitionsRecord, str] | None:
    """The last partitions.conf record of ``network`` in the evidence, with its origin."""
    found = None
    for doc, origin in snap.evidence_for(f"network/{network}"):
        record = partitions_of(doc)
        if record is not None:
            found = (record, origin)
    return found


def latest_observed(snap: Snapshot, network: str) -> tuple[ObservedFabric, str] | None:
    """The last observed PKey tables for ``network`` in the snapshot's evidence, with its origin."""
    found = None
    for doc, origin in snap.evidence_for(f"fabric/{network}"):
        observed = observed_of(doc)
        if observed is not None:
            found = (observed, origin)
    return found


class IbPlaneInputs(Frozen):
    """The inventory side of one InfiniBand network: whose ports are where."""

    owners: dict[int, tuple[str, ...]]
    nodes: dict[int, str]
    tenants: tuple[str, ...]
    bad_guids: tuple[str, ...] = ()


def ib_inputs(snap: Snapshot, network: str) -> IbPlaneInputs:
    """Which tenants own which port GUIDs on ``network``, from the inventory."""
    owners: dict[int, tuple[str, ...]] = {}
    nodes: dict[int, str] = {}
    tenants: dict[str, None] = {}
    bad = []
    for view in snap.nodes:
        if network not in view.pool.networks:
            continue
        names = tuple(t.name for t in view.tenants)
        tenants.update(dict.fromkeys(names))
        for text in view.node.ib_port_guids:
            try:
                guid = guid_value(text)
            except InputError:
                bad.append(f"{view.node.name}: {text!r}")
                continue
            owners[guid] = tuple(dict.fromkeys((*owners.get(guid, ()), *names)))
            nodes[guid] = view.node.name
    return IbPlaneInputs(
        owners=owners, nodes=nodes, tenants=tuple(sorted(tenants)), bad_guids=tuple(bad)
    )


def _ib_findings(verdict: IbVerdict) -> tuple[ReachFinding, ...]:
    out = []
    for (a, b), leak in sorted(verdict.leaks.items()):
        out.append(ReachFinding(source=a, target=b, path=(leak.describe(),)))
        out.append(ReachFinding(source=b, target=a, path=(leak.describe(),)))
    return tuple(out)


def _ib_planes(snap: Snapshot, network: str) -> Iterator[PlaneReport]:
    inputs = ib_inputs(snap, network)
    partitions = latest_partitions(snap, network)
    observed = latest_observed(snap, network)
    notes = tuple(f"not a port GUID, ignored: {bad}" for bad in inputs.bad_guids)
    if not inputs.owners:
        yield PlaneReport(
            plane="infiniband",
            scope=network,
            basis="node ib_port_guids",
            evaluated=False,
            reason=f"no node attached to {network} declares ib_port_guids, so no port has a tenant",
            tenants=inputs.tenants,
            notes=notes,
        )
        return
    if partitions is None and observed is None:
        yield PlaneReport(
            plane="infiniband",
            scope=network,
            basis="none",
            evaluated=False,
            reason=f"network {network} declares no partitions_conf and no observed PKey tables "
            "were collected (`gpufence fabric observe`)",
            tenants=inputs.tenants,
            notes=notes,
        )
        return
    if partitions is not None:
        record, origin = partitions
        config = record.config()
        if observed is not None:
            seen = observed[0].subnet()
            ports = {**dict.fromkeys(inputs.owners, PortType.CA), **seen.ports}
            subnet = SubnetPorts(ports, seen.sm_port)
        else:
            subnet = SubnetPorts(dict.fromkeys(inputs.owners, PortType.CA))
        programmed = program(config, subnet)
        verdict = tenant_reach(programmed.tables, inputs.owners, programmed.names, inputs.nodes)
        basis = f"partitions.conf {record.path}"
        extra = list(notes)
        if record.fails_open:
            basis += " (fails to parse: OpenSM applies Default=0x7fff : ALL=full)"
        if programmed.missing_guids:
            extra.append(
                f"{len(programmed.missing_guids)} member GUID(s) are not ports of this network's "
                "nodes (storage targets, other subnets, or typos)"
            )
        yield PlaneReport(
            plane="infiniband",
            scope=network,
            basis=basis,
            evaluated=True,
            tenants=inputs.tenants,
            reach=_ib_findings(verdict),
            notes=tuple(extra),
        )
    if observed is not None:
        fabric, origin = observed
        tables = fabric.tables()
        unread = [g for g in inputs.owners if g not in tables]
        verdict = tenant_reach(tables, inputs.owners, {}, inputs.nodes)
        yield PlaneReport(
            plane="infiniband",
            scope=network,
            basis=f"observed PKey tables ({origin})",
            evaluated=True,
            tenants=inputs.tenants,
            reach=_ib_findings(verdict),
            notes=(
                *notes,
                *([f"{len(unread)} tenant port(s) have no observed PKey table"] if unread else []),
            ),
        )


def _path(graph: SegmentGraph, a: Attachment, b: Attachment) -> tuple[str, ...]:
    hops = graph.path(a.key, b.key) or []
    return (a.reason, *(f"{hop.a} -> {hop.b} ({hop.reason})" for hop in hops), b.reason)


def _graph_reach(graph: SegmentGraph, *, infra: bool) -> list[ReachFinding]:
    """Tenant->tenant pairs (infra=False) or tenant->management network (infra=True)."""
    out = []
    for members, _ in graph.shared():
        tenants = sorted(o for o in members if not o.startswith(INFRA_PREFIX))
        targets = sorted(o for o in members if o.startswith(INFRA_PREFIX)) if infra else tenants
        for source in tenants:
            for target in targets:
                if source == target:
                    continue
                out.append(
                    ReachFinding(
                        source=source,
                        target=target.removeprefix(INFRA_PREFIX),
                        path=_path(graph, members[source], members[target]),
                    )
                )
    return out


def _l3_planes(snap: Snapshot) -> Iterator[PlaneReport]:
    inv = snap.inventory
    tenants = tuple(sorted(snap.tenants))
    if not inv.networks:
        empty: tuple[Plane, ...] = ("ethernet", "oob")
        for plane in empty:
            yield PlaneReport(
                plane=plane,
                scope="declared networks",
                basis="inventory",
                evaluated=False,
                reason="the inventory declares no networks",
                tenants=tenants,
            )
        return
    sure = plane_graph(inv, undeclared_flat=False)
    worst = plane_graph(inv, undeclared_flat=True)
    carried: dict[str, set[str]] = {}
    for entry in tenant_entries(inv):
        carried.setdefault(entry.network, set()).add(entry.tenant)
    undeclared = sorted(
        n.name
        for n in inv.networks
        if n.kind is NetworkKind.ETHERNET
        and n.tenant_isolation is None
        and len(carried.get(n.name, ())) > 1
    )
    note = (
        ("shared networks without tenant_isolation (read both ways): " + ", ".join(undeclared),)
        if undeclared
        else ()
    )
    kinds: tuple[tuple[Plane, bool], ...] = (("ethernet", False), ("oob", True))
    for plane, infra in kinds:
        definite = _graph_reach(sure, infra=infra)
        seen = {(f.source, f.target) for f in definite}
        maybe = [f for f in _graph_reach(worst, infra=infra) if (f.source, f.target) not in seen]
        yield PlaneReport(
            plane=plane,
            scope="declared networks",
            basis="inventory networks (routes, VNIs, VRFs; ACLs treated as open)",
            evaluated=True,
            tenants=tenants,
            reach=tuple(definite),
            possible=tuple(maybe),
            notes=note,
        )


def ib_plane_reports(snap: Snapshot) -> list[PlaneReport]:
    """The InfiniBand planes: per IB network, from partitions.conf and from observed tables."""
    planes: list[PlaneReport] = []
    for net in snap.inventory.networks:
        if net.kind is NetworkKind.INFINIBAND:
            planes.extend(_ib_planes(snap, net.name))
    return planes


def l3_plane_reports(snap: Snapshot) -> list[PlaneReport]:
    """The Ethernet/L3 plane and the OOB/management plane."""
    return list(_l3_planes(snap))


def fabric_report(snap: Snapshot) -> FabricReport:
    """Who reaches whom on every plane of the snapshot (pure)."""
    planes = [*ib_plane_reports(snap), *l3_plane_reports(snap)]
    return FabricReport(
        inventory=snap.source_file, tenants=tuple(sorted(snap.tenants)), planes=tuple(planes)
    )


_TITLES = {"infiniband": "InfiniBand", "ethernet": "Ethernet/L3", "oob": "OOB/management"}


def format_text(report: FabricReport, *, limit: int = 20) -> str:
    """The report as text, at most ``limit`` pairs per plane."""
    lines = [f"fabric reachability for {report.inventory}", ""]
    for plane in report.planes:
        head = f"{_TITLES[plane.plane]} — {plane.scope} ({plane.basis})"
        lines.append(head)
        if not plane.evaluated:
            lines.append(f"  NOT EVALUATED: {plane.reason}")
        else:
            lines.extend(_pairs(plane.reach, "REACH", limit))
            lines.extend(_pairs(plane.possible, "POSSIBLE", limit))
            reaching = {f.source for f in plane.reach}
            isolated = [t for t in plane.tenants if t not in reaching]
            if not plane.reach:
                what = "a management/OOB network" if plane.plane == "oob" else "another tenant"
                lines.append(f"  no tenant reaches {what}")
            if isolated and plane.reach:
                lines.append("  isolated: " + ", ".join(isolated))
        lines.extend(f"  note: {note}" for note in plane.notes)
        lines.append("")
    leaks = sum(len(p.reach) for p in report.planes)
    clean = "PASS: no tenant reaches another tenant or a management/OOB network"
    lines.append(f"FAIL: {leaks} reach finding(s)" if leaks else clean)
    return "\n".join(lines) + "\n"


def _pairs(findings: tuple[ReachFinding, ...], word: str, limit: int) -> list[str]:
    out = []
    for finding in findings[:limit]:
        out.append(f"  {word} {finding.source} -> {finding.target}")
        out.extend(f"      {step}" for step in finding.path)
    if len(findings) > limit:
        out.append(f"  ... {len(findings) - limit} more ({word.lower()}); use --format json")
    return out
