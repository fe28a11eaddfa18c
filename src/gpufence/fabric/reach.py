"""Who can reach which network, from the inventory's declared topology (pure).

Networks joined by ``routed_to`` form components (union-find). Tenants enter networks through
the node pools that run their workloads: every network when they have root on the host (they
can tag any VLAN and set any address), otherwise the data networks (compute, storage,
tenant-facing). ACLs are not modelled: a declared route counts as open, so a leak is never
missed (DESIGN: over-approximate reachability, report the path that proves it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpufence.model.inventory import Inventory, Network, NetworkPurpose

__all__ = ["TenantEntry", "components", "route_path", "tenant_entries"]

_CONTROL_PLANES = {NetworkPurpose.MANAGEMENT, NetworkPurpose.OOB}


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
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
    """Connected components over ``routed_to`` (symmetric), each sorted, sorted by first name."""
    nets = list(networks)
    uf = _UnionFind(n.name for n in nets)
    for net in nets:
        for other in net.routed_to:
            if other in uf.parent:
                uf.union(net.name, other)
    groups: dict[str, list[str]] = {}
    for net in nets:
        groups.setdefault(uf.find(net.name), []).append(net.name)
    return sorted(tuple(sorted(g)) for g in groups.values())


def _adjacency(networks: Iterable[Network]) -> dict[str, set[str]]:
    adj: dict[str, set[str]] = {}
    for net in networks:
        adj.setdefault(net.name, set())
        for other in net.routed_to:
            adj[net.name].add(other)
            adj.setdefault(other, set()).add(net.name)
    return adj


def route_path(networks: Iterable[Network], start: str, goal: str) -> list[str] | None:
    """Shortest chain of networks from ``start`` to ``goal`` over routes (BFS), or None."""
    adj = _adjacency(networks)
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            path = [here]
            while (step := previous[path[-1]]) is not None:
                path.append(step)
            return path[::-1]
        for nxt in sorted(adj.get(here, ())):
            if nxt not in previous:
                previous[nxt] = here
                queue.append(nxt)
    return None


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
