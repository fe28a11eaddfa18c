"""Who can reach which network, from the inventory's declared topology (pure).

Networks are segments. They are joined by ``routed_to`` (a declared route), by a shared ``vni``
(one VXLAN VNI is one L2 segment) and by a shared ``vrf`` (one VRF routes its networks to each
other). Tenants enter networks through the node pools that run their workloads: every network when
they have root on the host (they can tag any VLAN and set any address), otherwise the data networks
(compute, storage, tenant-facing). ACLs are not modelled: a declared route counts as open, so a
leak is never missed (DESIGN: over-approximate reachability, report the path that proves it).

:func:`plane_graph` builds the inventory's L2/L3 plane as a :class:`SegmentGraph`: a network that
carries several tenants *with* declared per-tenant isolation (or any InfiniBand network, whose
tenant separation is the IB plane's business) is split into one segment per tenant, each keeping
the network's joins: to a shared network (or a VNI/VRF) every tenant segment meets the others
there; a route between two split networks joins each tenant's two segments only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpufence.fabric.segments import Hop, SegmentGraph
from gpufence.model.inventory import (
    Inventory,
    Network,
    NetworkKind,
    NetworkPurpose,
    TenantIsolation,
)

__all__ = [
    "TenantEntry",
    "components",
    "explain_route",
    "infra_owner",
    "plane_graph",
    "route_path",
    "tenant_entries",
]

_CONTROL_PLANES = {NetworkPurpose.MANAGEMENT, NetworkPurpose.OOB}
INFRA_PREFIX = "infra:"


def infra_owner(network: str) -> str:
    """Owner label of a management/OOB network in a :class:`SegmentGraph`."""
    return f"{INFRA_PREFIX}{network}"


def _joins(networks: Sequence[Network]) -> list[tuple[str, str, str]]:
    """(a, b, reason) edges between network names and virtual VNI/VRF nodes ('vni:N', 'vrf:X')."""
    known = {n.name for n in networks}
    edges: list[tuple[str, str, str]] = []
    for net in networks:
        edges.extend(
            (net.name, other, f"{net.name} is routed to {other}")
            for other in net.routed_to
            if other in known
        )
        if net.vni is not None:
            edges.append((net.name, f"vni:{net.vni}", f"{net.name} is on VXLAN VNI {net.vni}"))
        if net.vrf is not None:
            edges.append((net.name, f"vrf:{net.vrf}", f"{net.name} is attached to VRF {net.vrf}"))
    return edges


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Deterministic root: the smaller name, so reports are stable.
            self.parent[max(ra, rb)] = min(ra, rb)


def components(networks: Iterable[Network]) -> list[tuple[str, ...]]:
    """Connected components over routes, shared VNIs and shared VRFs; each sorted, sorted by
    first name (networks only; the VNI/VRF nodes that join them are not listed)."""
    nets = list(networks)
    uf = _UnionFind(n.name for n in nets)
    for a, b, _ in _joins(nets):
        uf.union(a, b)
    groups: dict[str, list[str]] = {}
    for net in nets:
        groups.setdefault(uf.find(net.name), []).append(net.name)
    return sorted(tuple(sorted(g)) for g in groups.values())


def explain_route(networks: Iterable[Network], start: str, goal: str) -> list[Hop] | None:
    """Shortest chain of joins from network ``start`` to ``goal`` (BFS), or None.

    ``[]`` when start == goal; hops through a VNI or VRF name it ('VNI 5001', 'VRF tenants').
    """
    adjacency: dict[str, list[tuple[str, str]]] = {}
    for a, b, reason in _joins(list(networks)):
        adjacency.setdefault(a, []).append((b, reason))
        adjacency.setdefault(b, []).append((a, reason))
    for hops in adjacency.values():
        hops.sort()
    previous: dict[str, tuple[str, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            path: list[Hop] = []
            while (step := previous[here]) is not None:
                path.append(Hop(_node_label(step[0]), _node_label(here), step[1]))
                here = step[0]
            return path[::-1]
        for nxt, reason in adjacency.get(here, ()):
            if nxt not in previous:
                previous[nxt] = (here, reason)
                queue.append(nxt)
    return None


def _node_label(node: str) -> str:
    if node.startswith("vni:"):
        return f"VNI {node[4:]}"
    if node.startswith("vrf:"):
        return f"VRF {node[4:]}"
    return node


def route_path(networks: Iterable[Network], start: str, goal: str) -> list[str] | None:
    """Shortest chain of *networks* from ``start`` to ``goal``, or None (VNI/VRF hops elided)."""
    hops = explain_route(networks, start, goal)
    if hops is None:
        return None
    names = [start] + [hop.b for hop in hops]
    return [n for n in names if not n.startswith(("VNI ", "VRF "))]


@dataclass(frozen=True)
class TenantEntry:
    """A tenant reaches ``network`` directly, for the reason given."""

    tenant: str
    network: str
    reason: str


def tenant_entries(inventory: Inventory) -> list[TenantEntry]:
    """Every (tenant, network) the tenant can send traffic on without crossing a route."""
    nets: Mapping[str, Network] = {n.name: n for n in inventory.networks}
    entries: dict[tuple[str, str], TenantEntry] = {}

    def add(tenant: str, network: str, reason: str) -> None:
        entries.setdefault((tenant, network), TenantEntry(tenant, network, reason))

    for net in inventory.networks:
        for tenant in net.tenants:
            add(tenant, net.name, f"network {net.name} carries tenant {tenant}'s traffic")
    for pool in inventory.node_pools:
        tenants = dict.fromkeys(w.tenant for w in pool.workloads)
        for name in pool.networks:
            net = nets[name]  # the loader guarantees every reference resolves
            data_plane = not set(net.purposes) <= _CONTROL_PLANES
            for tenant in tenants:
                if pool.tenant_root:
                    add(
                        tenant,
                        name,
                        f"tenant {tenant} has root on pool {pool.name}'s nodes, "
                        f"which attach to {name}",
                    )
                elif data_plane:
                    add(
                        tenant,
                        name,
                        f"tenant {tenant}'s workloads on pool {pool.name} use data network {name}",
                    )
    return sorted(entries.values(), key=lambda e: (e.network, e.tenant))


def _split(net: Network, tenants: set[str], undeclared_flat: bool) -> bool:
    """Does ``net`` give each of its tenants a separate segment?"""
    if len(tenants) < 2:
        return False
    if net.kind is NetworkKind.INFINIBAND:
        return True  # PKeys are judged on the IB plane
    if net.tenant_isolation is None:
        return not undeclared_flat
    return net.tenant_isolation is not TenantIsolation.NONE


def plane_graph(inventory: Inventory, *, undeclared_flat: bool) -> SegmentGraph:
    """The L2/L3 plane: networks (split per tenant where isolated), joins, tenant attachments,
    and management/OOB networks attached as :func:`infra_owner` owners.

    ``undeclared_flat``: treat shared Ethernet networks without ``tenant_isolation`` as one
    segment (the pessimistic reading) instead of isolated.
    """
    entries = tenant_entries(inventory)
    by_network: dict[str, set[str]] = {}
    for entry in entries:
        by_network.setdefault(entry.network, set()).add(entry.tenant)
    split = {
        net.name: _split(net, by_network.get(net.name, set()), undeclared_flat)
        for net in inventory.networks
    }

    def keys(name: str) -> list[tuple[str, ...]]:
        if split.get(name):
            return [("network", name, tenant) for tenant in sorted(by_network[name])]
        return [("network", name)]

    graph = SegmentGraph()
    for net in inventory.networks:
        for key in keys(net.name):
            graph.node(key)
    for a, b, reason in _joins(inventory.networks):
        if b.startswith(("vni:", "vrf:")):
            for ka in keys(a):  # one VNI / one VRF: every segment on it meets every other
                graph.join(ka, tuple(b.split(":", 1)), reason)
        elif split.get(a) and split.get(b):
            # A route between two per-tenant networks keeps tenants apart: each tenant's
            # segment on one side meets that tenant's segment on the other.
            for tenant in sorted(by_network[a] & by_network[b]):
                graph.join(("network", a, tenant), ("network", b, tenant), reason)
        else:
            for ka in keys(a):
                for kb in keys(b):
                    graph.join(ka, kb, reason)
    for entry in entries:
        key = (
            ("network", entry.network, entry.tenant)
            if split[entry.network]
            else ("network", entry.network)
        )
        graph.attach(entry.tenant, entry.tenant, key, entry.reason)
    for net in inventory.networks:
        if set(net.purposes) & _CONTROL_PLANES:
            purposes = "/".join(p.value for p in net.purposes if p in _CONTROL_PLANES)
            for key in keys(net.name):
                graph.attach(
                    infra_owner(net.name), net.name, key, f"{net.name} is a {purposes} network"
                )
    return graph
