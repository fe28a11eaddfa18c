"""The planner's mutable working state (private; the result is the frozen Plan)."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpufence.catalog import GpuModel
from gpufence.model.inventory import NodePool, Site
from gpufence.plan.packing import GpuFill

__all__ = [
    "FreeIndex",
    "Job",
    "MigAsk",
    "Packed",
    "WorkGpu",
    "WorkNode",
    "WorkOutcome",
    "WorkPool",
]


@dataclass(slots=True)
class WorkGpu:
    tenant: str | None = None
    job_gpus: int | None = None
    instances: list[tuple[str, int, int]] = field(default_factory=list)  # tenant, shape, start
    counts: tuple[int, ...] | None = None

    @property
    def used(self) -> bool:
        return self.tenant is not None or bool(self.instances)


@dataclass(eq=False, slots=True)
class WorkNode:
    pool: WorkPool
    uid: int
    name: str
    gpus: list[WorkGpu]
    free: int
    tenants: dict[str, None] = field(default_factory=dict)
    exclusive: str | None = None

    @property
    def empty(self) -> bool:
        return self.free == len(self.gpus)

    def take(self, count: int) -> list[WorkGpu]:
        """The first ``count`` free GPUs (the caller fills them)."""
        taken = [g for g in self.gpus if not g.used and g.counts is None][:count]
        assert len(taken) == count
        return taken


@dataclass(eq=False, slots=True)
class WorkPool:
    index: int
    spec: NodePool
    model: GpuModel
    site: Site
    mig: bool = False
    nodes: list[WorkNode] = field(default_factory=list)
    shared: FreeIndex = field(init=False)

    @property
    def size(self) -> int:
        return len(self.nodes) * self.spec.gpus_per_node


class FreeIndex:
    """Nodes of one pool by free-GPU count (lazy heaps).

    All nodes of a pool have the same size, so the bucket ``free == size`` holds exactly the
    empty nodes. Best fit takes the fullest node that still fits; first fit the lowest node.
    """

    def __init__(self, nodes: Sequence[WorkNode], size: int, owner: str | None) -> None:
        self.owner = owner  # None: shareable nodes; a tenant: that tenant's own nodes
        self.size = size
        self.heaps: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.by_uid: dict[int, WorkNode] = {}
        for node in nodes:
            self.push(node)

    def push(self, node: WorkNode) -> None:
        if node.free > 0 and node.exclusive == self.owner:
            self.by_uid[node.uid] = node
            heapq.heappush(self.heaps[node.free], (node.uid, node.free))

    def _top(self, free: int) -> WorkNode | None:
        heap = self.heaps.get(free)
        while heap:
            uid, at = heap[0]
            node = self.by_uid[uid]
            if node.free == at and node.exclusive == self.owner:
                return node
            heapq.heappop(heap)
        return None

    def find(self, count: int, *, empty: bool, first_fit: bool = False) -> WorkNode | None:
        """An empty node (``empty``) or a node in use with >= ``count`` free GPUs."""
        if empty:
            return self._top(self.size) if count <= self.size else None
        best: WorkNode | None = None
        for free in range(count, self.size):
            node = self._top(free)
            if node is None:
                continue
            if not first_fit:
                return node
            if best is None or node.uid < best.uid:
                best = node
        return best


@dataclass(slots=True)
class WorkOutcome:
    tenant: str
    demand: int
    what: str
    requested: int = 0
    placed: int = 0
    pools: dict[str, None] = field(default_factory=dict)
    reason: str | None = None

    def fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass(slots=True)
class Job:
    """One whole-GPU job: ``gpus`` GPUs on one node."""

    tenant: str
    outcome: WorkOutcome
    gpus: int
    order: int
    pools: list[WorkPool]


@dataclass(slots=True)
class MigAsk:
    """One MIG demand: ``count`` instances of ``profile``; ``left`` counts down when packed."""

    tenant: str
    outcome: WorkOutcome
    profile: str
    count: int
    order: int
    pools: list[WorkPool]
    left: int = 0


# A packed GPU and the demand that owns each of its instances (same order as fill.placed).
Packed = tuple[GpuFill, list[MigAsk]]
