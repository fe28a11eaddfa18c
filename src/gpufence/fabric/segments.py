"""Ethernet/L3 reachability: union-find over segments, with the joins kept to prove each path.

A *segment* is anything frames or packets flow freely within: a (switch, VLAN) pair, a VXLAN VNI,
a VRF, or (at inventory level) a declared network. *Joins* merge segments: a trunk carrying a
VLAN between two switches, a VLAN-to-VNI map, an SVI of a VLAN in a VRF, a route leak between
VRFs, a declared route. ACLs and firewalls are not modelled: a join is open, so a leak is never
missed (sound for "proved isolated"; a reported path may be filtered in reality).

*Endpoints* attach to segments for their owner (a tenant, or an infrastructure label such as a
management network). A tenant-controlled host (bare metal) attaches to every VLAN its switch port
admits, tagged or not. Two owners reach each other iff they attach to one component; the witness
path is a breadth-first search over the joins between the two attachment points, done only for
the pairs reported.

Cost: O((joins + attachments) * alpha(n)) for the verdict, O(component) per explained path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Attachment", "Hop", "SegmentGraph", "label", "segment_key"]


def segment_key(switch: str, vlan: int) -> tuple[str, str, int]:
    """The graph key of a VLAN on a switch."""
    return ("vlan", switch, vlan)


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a witness path: from ``a`` to ``b`` because of ``reason``."""

    a: str
    b: str
    reason: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A tenant's (or a network's) endpoint attached to a segment, with the reason."""

    owner: str
    endpoint: str
    segment: str
    """Human label of the segment."""
    reason: str
    key: Hashable
    """The segment's key (for :meth:`SegmentGraph.path`)."""


def label(key: Hashable) -> str:
    """Human name of a segment key."""
    if isinstance(key, tuple) and key:
        kind, rest = key[0], key[1:]
        if kind == "vlan" and len(rest) == 2:
            return f"{rest[0]} VLAN {rest[1]}"
        if kind == "network" and len(rest) == 1:
            return str(rest[0])
        if kind == "network" and len(rest) == 2:
            return f"{rest[0]} [{rest[1]}'s segment]"
        if kind == "vni" and len(rest) == 1:
            return f"VNI {rest[0]}"
        if kind == "vrf" and len(rest) == 1:
            return f"VRF {rest[0]}"
        return " ".join(str(part) for part in key)
    return str(key)


class SegmentGraph:
    """Segments (any hashable key), joins with reasons, owner attachments."""

    def __init__(self) -> None:
        self._index: dict[Hashable, int] = {}
        self._keys: list[Hashable] = []
        self._parent: list[int] = []
        self._joins: list[tuple[int, int, str]] = []
        self._owner_index: dict[str, int] = {}
        self._owners: list[str] = []
        self._attached: list[tuple[int, int, str, str]] = []  # owner, node, endpoint, reason
        self._adjacency: dict[int, list[tuple[int, str]]] | None = None
        self._trees: dict[int, dict[int, tuple[int, str] | None]] = {}
        """The last start's BFS predecessor map (callers ask from one start to many goals in a
        row); dropped at the next join. One map only: a map per start would hold the graph
        once per tenant."""

    def node(self, key: Hashable) -> int:
        """The graph index of ``key``, added when new."""
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self._keys)
            self._keys.append(key)
            self._parent.append(index)
        return index

    def _find(self, i: int) -> int:
        parent = self._parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    def join(self, a: Hashable, b: Hashable, reason: str) -> None:
        """Record that segments ``a`` and ``b`` are one (union), with the reason."""
        ia, ib = self.node(a), self.node(b)
        self._joins.append((ia, ib, reason))
        ra, rb = self._find(ia), self._find(ib)
        if ra != rb:
            # The older node stays root: deterministic components for stable reports.
            self._parent[max(ra, rb)] = min(ra, rb)
        self._adjacency = None
        self._trees = {}

    def attach(self, owner: str, endpoint: str, segment: Hashable, reason: str) -> None:
        """Attach ``owner``'s ``endpoint`` to ``segment``."""
        oi = self._owner_index.get(owner)
        if oi is None:
            oi = self._owner_index[owner] = len(self._owners)
            self._owners.append(owner)
        self._attached.append((oi, self.node(segment), endpoint, reason))

    def same_segment(self, a: Hashable, b: Hashable) -> bool:
        """Whether ``a`` and ``b`` ended up in one segment."""
        if a not in self._index or b not in self._index:
            return a == b
        return self._find(self._index[a]) == self._find(self._index[b])

    def owners_by_component(self) -> dict[int, dict[str, Attachment]]:
        """Component root -> owner -> the first attachment that puts the owner there."""
        out: dict[int, dict[str, Attachment]] = {}
        owners, keys = self._owners, self._keys
        for oi, node, endpoint, reason in self._attached:
            members = out.setdefault(self._find(node), {})
            owner = owners[oi]
            if owner not in members:
                members[owner] = Attachment(owner, endpoint, label(keys[node]), reason, keys[node])
        return out

    def shared(self) -> Iterator[tuple[dict[str, Attachment], int]]:
        """Components that hold two or more owners, with their root."""
        for root, members in self.owners_by_component().items():
            if len(members) > 1:
                yield members, root

    def path(self, a: Hashable, b: Hashable) -> list[Hop] | None:
        """Shortest chain of joins from segment ``a`` to segment ``b`` (BFS), or None."""
        if a not in self._index or b not in self._index:
            return None
        start, goal = self._index[a], self._index[b]
        if self._find(start) != self._find(goal):
            return None
        if self._adjacency is None:  # built once, for every path asked until the next join
            self._adjacency = {}
            for x, y, reason in self._joins:
                self._adjacency.setdefault(x, []).append((y, reason))
                self._adjacency.setdefault(y, []).append((x, reason))
        previous = self._trees.get(start)
        if previous is None:
            # One full BFS per start: reports ask for paths from one segment to many others.
            adjacency = self._adjacency
            previous = {start: None}
            queue = deque([start])
            while queue:
                here = queue.popleft()
                for nxt, reason in adjacency.get(here, ()):
                    if nxt not in previous:
                        previous[nxt] = (here, reason)
                        queue.append(nxt)
            self._trees = {start: previous}
        if goal not in previous:
            return None  # pragma: no cover - same root implies a path
        here = goal
        hops: list[Hop] = []
        while (step := previous[here]) is not None:
            before, reason = step
            hops.append(Hop(label(self._keys[before]), label(self._keys[here]), reason))
            here = before
        return hops[::-1]

    def keys(self) -> Iterable[Hashable]:
        """Every segment key seen."""
        return iter(self._keys)
