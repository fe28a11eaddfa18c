"""Fleet placement: every tenant's demand on the inventory's nodes, honouring the tiers.

Order of work (each step documented in docs/planning.md):

1. refuse impossible demands up front (no pool could ever serve them: InputError at the demand);
2. pack MIG demand per GPU model and co-tenancy group (``shared`` for tenants whose tier allows
   MIG co-tenancy, else one group per tenant) with :mod:`gpufence.plan.packing`;
3. choose which pools run MIG (a pool has one sharing mode): enough pools of the model for the
   packed GPUs, keeping capacity that multi-GPU / confidential whole-GPU jobs can only get there;
4. put MIG GPUs on nodes (whole empty nodes for node-exclusive tenants), then whole-GPU jobs on
   non-MIG pools (node-exclusive tenants first, then largest jobs, best fit), then left-over
   single-GPU jobs on free MIG GPUs as full-GPU instances;
5. decide each node's CC mode from who landed on it.

Pure: no I/O. Strategy ``first-fit`` is the benchmark's baseline (arrival order, first fit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from enum import StrEnum

from gpufence.catalog import GpuModel, load_catalog, normalize_mig_profile_name
from gpufence.errors import InputError, SourceLocation, UnknownGpuModelError
from gpufence.model.inventory import Demand, Ownership
from gpufence.model.snapshot import Snapshot
from gpufence.plan._result import build_plan
from gpufence.plan._state import (
    FreeIndex,
    Job,
    MigAsk,
    Packed,
    WorkGpu,
    WorkNode,
    WorkOutcome,
    WorkPool,
)
from gpufence.plan.mig import MigGrid, grid_for
from gpufence.plan.packing import GpuFill, first_fit, lower_bound, pack, slice_bound
from gpufence.plan.tiers import Mechanism, TierDecision, decide_tiers, pool_refusal
from gpufence.plan.types import LowerBound, Plan

__all__ = ["Strategy", "place"]


class Strategy(StrEnum):
    """MIG packing strategy: packed (default) or first-fit (the baseline)."""

    PACKED = "packed"
    FIRST_FIT = "first-fit"


def _site_rank(pool: WorkPool, sensitive: bool) -> int:
    order = (Ownership.OWNED, Ownership.COLOCATION, Ownership.RENTED)
    rank = order.index(pool.site.ownership)
    # Sensitive tenants prefer owned capacity (no CC needed there); others leave it to them.
    return rank if sensitive else len(order) - 1 - rank


def _node_exclusive(tier: TierDecision, mechanism: Mechanism, pool: WorkPool) -> bool:
    """Whether the tenant must be alone on a node of this pool."""
    if mechanism is Mechanism.DEDICATED_NODE or pool.model.consumer:
        return True
    # Sensitive data on a shared node needs CC (cc-shared-or-rented), and a CC node is one CVM
    # for one tenant (cc-one-cvm-per-node: NVIDIA Confidential Containers), so it never shares.
    return tier.needs_ecc


def _location(snapshot: Snapshot, pointer: tuple[str | int, ...]) -> SourceLocation:
    loc = snapshot.location(pointer)
    return SourceLocation(loc.file, loc.line, loc.column)


def _describe(demand: Demand) -> str:
    if demand.mig_profile is not None:
        return f"{demand.count} x MIG {demand.mig_profile}"
    per_job = f", {demand.gpus_per_job} per job" if demand.gpus_per_job > 1 else ""
    return f"{demand.gpus} GPU{'s' if demand.gpus != 1 else ''}{per_job}"


def _jobs_of(demand: Demand) -> list[int]:
    assert demand.gpus is not None
    full, rest = divmod(demand.gpus, demand.gpus_per_job)
    return [demand.gpus_per_job] * full + ([rest] if rest else [])


def _group_name(group: str) -> str:
    return group.split(":", 1)[1] if ":" in group else group


class _Planner:
    def __init__(self, snapshot: Snapshot, recommended: bool, strategy: Strategy) -> None:
        self.snapshot = snapshot
        self.inventory = snapshot.inventory
        self.recommended = recommended
        self.strategy = strategy
        self.first_fit = strategy is Strategy.FIRST_FIT
        self.tiers = decide_tiers(self.inventory, snapshot.gpu_models)
        sites = {s.name: s for s in self.inventory.sites}
        self.pools: list[WorkPool] = []
        uid = 0
        for index, spec in enumerate(self.inventory.node_pools):
            pool = WorkPool(index, spec, snapshot.gpu_models[spec.name], sites[spec.site])
            for node in spec.nodes:
                gpus = [WorkGpu() for _ in range(spec.gpus_per_node)]
                pool.nodes.append(WorkNode(pool, uid, node.name, gpus, spec.gpus_per_node))
                uid += 1
            self.pools.append(pool)
        self.outcomes: list[WorkOutcome] = []
        self.jobs: list[Job] = []
        self.asks: list[MigAsk] = []
        self.exclusive: dict[tuple[str, int], FreeIndex] = {}
        self.bounds: list[LowerBound] = []

    def mechanism(self, tenant: str) -> Mechanism:
        return self.tiers[tenant].mechanism(self.recommended)

    # -- 1. requests; impossible demands are input errors ------------------------------------

    def collect(self) -> None:
        catalog = load_catalog()
        order = 0
        # Whether a pool can serve a demand depends only on these; fleets repeat them a lot.
        verdicts: dict[tuple[object, ...], tuple[list[WorkPool], list[tuple[str, str]]]] = {}
        lookups: dict[str, GpuModel] = {}
        for t_index, tenant in enumerate(self.inventory.tenants):
            tier = self.tiers[tenant.name]
            for d_index, demand in enumerate(tenant.demand):
                at = ("tenants", t_index, "demand", d_index)
                wanted = None
                if demand.gpu_model is not None:
                    wanted = lookups.get(demand.gpu_model)
                    if wanted is None:
                        try:
                            wanted = lookups[demand.gpu_model] = catalog.lookup(demand.gpu_model)
                        except UnknownGpuModelError as exc:
                            where = _location(self.snapshot, (*at, "gpu_model"))
                            raise exc.with_location(where) from exc
                key = (
                    tier.data_sensitivity,
                    demand.mig_profile,
                    demand.gpus_per_job,
                    wanted.key if wanted else None,
                )
                if key not in verdicts:
                    verdicts[key] = ([], [])
                    for pool in self.pools:
                        why = pool_refusal(tier, demand, pool.spec, pool.model, pool.site, wanted)
                        if why is None:
                            verdicts[key][0].append(pool)
                        else:
                            verdicts[key][1].append((pool.spec.name, why.reason))
                ok, refused = verdicts[key]
                outcome = WorkOutcome(tenant.name, d_index, _describe(demand))
                self.outcomes.append(outcome)
                if not ok:
                    raise InputError(
                        f"tenant {tenant.name!r} demand {d_index + 1} ({_describe(demand)}) "
                        f"cannot be placed on any pool ({tier.data_sensitivity.value} data, "
                        f"{tier.trust.value} trust): "
                        + ("; ".join(f"pool {n}: {why}" for n, why in refused) or "no pools"),
                        location=_location(self.snapshot, at),
                        hint="add capacity with the missing capability, or change the demand",
                    )
                if demand.mig_profile is not None:
                    outcome.requested = demand.count
                    profile = normalize_mig_profile_name(demand.mig_profile)
                    self.asks.append(MigAsk(tenant.name, outcome, profile, demand.count, order, ok))
                    order += 1
                    continue
                jobs = _jobs_of(demand)
                biggest = max(p.spec.gpus_per_node for p in ok)
                if max(jobs) > biggest:
                    raise InputError(
                        f"tenant {tenant.name!r} demand {d_index + 1} ({_describe(demand)}): a "
                        f"job spans {max(jobs)} GPUs but the largest node of the pools that may "
                        f"serve it has {biggest}",
                        location=_location(self.snapshot, at),
                        hint="a job's GPUs share one node (NVLink/PCIe P2P); lower gpus_per_job",
                    )
                outcome.requested = len(jobs)
                for size in jobs:
                    self.jobs.append(Job(tenant.name, outcome, size, order, ok))
                    order += 1

    # -- 2./3. MIG: pack per model and group, choose MIG pools, fill nodes -------------------

    def _group_of(self, tenant: str) -> str:
        """``shared`` for tenants whose tier allows MIG co-tenancy, else ``node:<tenant>``.

        A tenant that must not share GPUs gets nodes of its own in MIG pools: the device
        plugin hands any free instance of a profile to any pod, so only a tainted node keeps
        other tenants' pods off that tenant's GPUs.
        """
        tier = self.tiers[tenant]
        shares = self.mechanism(tenant).shares_gpu and not tier.needs_ecc
        return "shared" if shares else f"node:{tenant}"

    def _assign_models(self) -> dict[str, list[MigAsk]]:
        """Each MIG demand to one GPU model (a profile name may exist on several models)."""
        capacity: dict[str, float] = defaultdict(float)
        models: dict[str, GpuModel] = {}
        for pool in self.pools:
            if pool.model.mig_capable:
                capacity[pool.model.key] += pool.size
                models[pool.model.key] = pool.model
        by_model: dict[str, list[MigAsk]] = defaultdict(list)
        keys_of: dict[int, list[str]] = {}  # the eligible pool lists are shared per verdict
        for ask in self.asks:
            if id(ask.pools) not in keys_of:
                keys_of[id(ask.pools)] = list(dict.fromkeys(p.model.key for p in ask.pools))
        for ask in sorted(self.asks, key=lambda a: (len(keys_of[id(a.pools)]), a.order)):
            keys = keys_of[id(ask.pools)]
            key = max(keys, key=lambda k: (capacity[k], -keys.index(k)))
            model = models[key]
            profile = model.mig_profile(ask.profile)
            assert profile is not None
            capacity[key] -= ask.count * profile.compute_slices / model.mig_max_instances
            by_model[key].append(ask)
        for asks in by_model.values():
            asks.sort(key=lambda a: a.order)
        return by_model

    def _pack_group(self, grid: MigGrid, members: Sequence[MigAsk]) -> list[Packed]:
        shape_of = {}
        for ask in members:
            index = grid.index(ask.profile)
            assert index is not None
            shape_of[ask.order] = index
            ask.left = ask.count
        if self.first_fit:
            items = [shape_of[a.order] for a in members for _ in range(a.count)]
            arrivals = [a for a in members for _ in range(a.count)]
            return [
                (f, [arrivals[item] for _, _, item in f.placed]) for f in first_fit(grid, items)
            ]
        demand = [0] * len(grid.shapes)
        queues: list[list[MigAsk]] = [[] for _ in grid.shapes]
        for ask in members:
            demand[shape_of[ask.order]] += ask.count
            queues[shape_of[ask.order]].append(ask)
        packed: list[Packed] = []
        for fill in pack(grid, demand):
            owners: list[MigAsk] = []
            for shape, _, _ in fill.placed:
                ask = queues[shape][0]
                owners.append(ask)
                ask.left -= 1
                if ask.left == 0:
                    queues[shape].pop(0)
            packed.append((fill, owners))
        return packed

    def _strict_whole(self) -> dict[str, int]:
        """GPUs that whole-GPU jobs only non-MIG pools of one model can take, per model:
        multi-GPU jobs and sensitive tenants' jobs; whole nodes for tenants that need their own."""
        gpus: dict[tuple[str, str], int] = defaultdict(int)
        node_size: dict[str, int] = defaultdict(int)
        for job in self.jobs:
            models = {p.model.key for p in job.pools}
            if len(models) == 1 and (job.gpus > 1 or self.tiers[job.tenant].needs_ecc):
                key = next(iter(models))
                gpus[(key, job.tenant)] += job.gpus
                node_size[key] = max(p.spec.gpus_per_node for p in job.pools)
        strict: dict[str, int] = defaultdict(int)
        for (key, tenant), count in gpus.items():
            pool = next(p for p in self.pools if p.model.key == key)
            if _node_exclusive(self.tiers[tenant], self.mechanism(tenant), pool):
                count = -(-count // node_size[key]) * node_size[key]
            strict[key] += count
        return strict

    def _choose_mig_pools(self, key: str, need: int, reserve: int) -> list[WorkPool]:
        """The pools of ``key`` that run MIG: the smallest total capacity >= the packed need
        (exact subset sum), leaving ``reserve`` GPUs for jobs only non-MIG pools can take."""
        candidates = [p for p in self.pools if p.model.key == key and p.model.mig_capable]
        target = min(need, sum(p.size for p in candidates) - reserve)
        if target <= 0:
            return []
        # MIG tenants hold no sensitive data: rented capacity first, owned kept for others.
        ranked = sorted(candidates, key=lambda p: (_site_rank(p, False), -p.size, p.index))
        # reach[i]: bit s set when some subset of ranked[i:] sums to s GPUs.
        reach = [0] * (len(ranked) + 1)
        reach[-1] = 1
        for i in range(len(ranked) - 1, -1, -1):
            reach[i] = reach[i + 1] | (reach[i + 1] << ranked[i].size)
        budget = sum(p.size for p in candidates) - reserve
        above = next(s for s in range(target, reach[0].bit_length()) if reach[0] >> s & 1)
        below = next(s for s in range(target, -1, -1) if reach[0] >> s & 1)
        # Where no subset fits both, give the smaller shortfall: MIG GPUs or reserved GPUs.
        total = above if above - budget <= max(0, target - below) or above <= budget else below
        chosen: list[WorkPool] = []
        for i, pool in enumerate(ranked):
            # Take the pool (preferred order) whenever the rest can still make the total.
            if total >= pool.size and reach[i + 1] >> (total - pool.size) & 1:
                chosen.append(pool)
                total -= pool.size
        return chosen

    def place_mig(self) -> None:
        strict = self._strict_whole()
        for key, asks in self._assign_models().items():
            model = next(p.model for p in self.pools if p.model.key == key)
            grid = grid_for(model)
            groups: dict[str, list[MigAsk]] = defaultdict(list)
            for ask in asks:
                groups[self._group_of(ask.tenant)].append(ask)
            packed = {g: self._pack_group(grid, members) for g, members in groups.items()}
            gpn = max(p.spec.gpus_per_node for p in self.pools if p.model.key == key)
            need = sum(
                -(-len(gpus) // gpn) * gpn if g.startswith("node:") else len(gpus)
                for g, gpus in packed.items()
            )
            chosen = self._choose_mig_pools(key, need, strict.get(key, 0))
            for pool in chosen:
                pool.mig = True
            self._fill_mig(grid, packed, chosen)

    def _fill_mig(
        self, grid: MigGrid, packed: Mapping[str, list[Packed]], pools: Sequence[WorkPool]
    ) -> None:
        where = (
            f"no free GPU left on the MIG pools of {grid.model.key} "
            f"({', '.join(p.spec.name for p in pools)})"
            if pools
            else f"no pool of {grid.model.key} can run MIG: its capacity is held for multi-GPU "
            "or confidential whole-GPU jobs"
        )
        placed: dict[str, list[Packed]] = defaultdict(list)
        shareable: list[tuple[str, Packed]] = []
        for group in sorted(packed, key=lambda g: (not g.startswith("node:"), g)):
            if group.startswith("node:"):
                placed[group] = self._fill_exclusive(grid, group, packed[group], pools, where)
            else:
                shareable += [(group, item) for item in packed[group]]
        # Identical geometries side by side: nodes come out uniform (one mig-parted config).
        shareable.sort(key=lambda item: item[1][0].counts, reverse=True)
        free = iter(
            node
            for pool in pools
            for node in pool.nodes
            if node.exclusive is None
            for _ in range(node.free)
        )
        for group, (fill, owners) in shareable:
            node = next(free, None)
            if node is None:
                for ask in owners:
                    ask.outcome.fail(where)
                continue
            self._put_mig(node, fill, owners)
            placed[group].append((fill, owners))
        for group in packed:
            counts = [0] * len(grid.shapes)
            for fill, _ in placed[group]:
                counts = [a + b for a, b in zip(counts, fill.counts, strict=True)]
            self.bounds.append(
                LowerBound(
                    gpu_model=grid.model.key,
                    group=_group_name(group),
                    instances=sum(counts),
                    slice_bound=slice_bound(grid, counts),
                    gpus=lower_bound(grid, counts),
                    used=len(placed[group]),
                )
            )

    def _fill_exclusive(
        self,
        grid: MigGrid,
        group: str,
        packed: Sequence[Packed],
        pools: Sequence[WorkPool],
        where: str,
    ) -> list[Packed]:
        tenant = _group_name(group)
        allowed = [p for p in pools if all(p in a.pools for _, ow in packed for a in ow)]
        pending = list(packed)
        placed: list[Packed] = []
        while pending:
            # The pool whose node size strands the fewest GPUs for what is left.
            options = [
                (-(-len(pending) // p.spec.gpus_per_node) * p.spec.gpus_per_node, p.index, p)
                for p in allowed
                if any(n.empty and n.exclusive is None for n in p.nodes)
            ]
            if not options:
                for _, owners in pending:
                    for ask in owners:
                        ask.outcome.fail(f"{where}: no empty node left for {tenant} alone")
                break
            pool = min(options, key=lambda o: (o[0], o[1]))[2]
            node = next(n for n in pool.nodes if n.empty and n.exclusive is None)
            node.exclusive = tenant
            for _ in range(min(len(node.gpus), len(pending))):
                fill, owners = pending.pop(0)
                self._put_mig(node, fill, owners)
                placed.append((fill, owners))
            # GPUs left on the node stay the tenant's (its single-GPU jobs may use them).
            own = FreeIndex([], pool.spec.gpus_per_node, tenant)
            self.exclusive.setdefault((tenant, pool.index), own).push(node)
        return placed

    @staticmethod
    def _put_mig(node: WorkNode, fill: GpuFill, owners: Sequence[MigAsk]) -> None:
        gpu = node.take(1)[0]
        gpu.counts = fill.counts
        for (shape, start, _), ask in zip(fill.placed, owners, strict=True):
            gpu.instances.append((ask.tenant, shape, start))
            node.tenants[ask.tenant] = None
            ask.outcome.placed += 1
            ask.outcome.pools[node.pool.spec.name] = None
        node.free -= 1

    # -- 4. whole-GPU jobs ---------------------------------------------------------------------

    def place_whole(self) -> None:
        for pool in self.pools:
            pool.shared = FreeIndex(pool.nodes, pool.spec.gpus_per_node, None)
        jobs = list(self.jobs)
        if not self.first_fit:
            # Most constrained first: node-exclusive tenants (they need empty nodes), then jobs
            # with the fewest pools to go to, then the largest jobs.
            jobs.sort(
                key=lambda j: (
                    self.mechanism(j.tenant) is not Mechanism.DEDICATED_NODE,
                    len(j.pools),
                    -j.gpus,
                    j.order,
                )
            )
        leftovers = [job for job in jobs if not self._place_job(job, mig=False)]
        for job in leftovers:
            # Single-GPU jobs may take a free GPU of a MIG pool as its full-GPU instance.
            fits = job.gpus == 1 and not self.tiers[job.tenant].needs_ecc
            if not (fits and self._place_job(job, mig=True)):
                job.outcome.fail(self._capacity_reason(job))

    def _place_job(self, job: Job, mig: bool) -> bool:
        tier = self.tiers[job.tenant]
        mechanism = self.mechanism(job.tenant)
        sensitive = tier.needs_ecc
        pools = sorted(
            (p for p in job.pools if p.mig == mig),
            key=lambda p: (_site_rank(p, sensitive), p.index),
        )
        chosen: WorkNode | None = None
        # Nodes already in use first (best fit over all pools), then an empty node.
        for pool in pools:
            exclusive = _node_exclusive(tier, mechanism, pool)
            index = self.exclusive.get((job.tenant, pool.index)) if exclusive else pool.shared
            node = index.find(job.gpus, empty=False, first_fit=self.first_fit) if index else None
            if node is None:
                continue
            if chosen is None or (
                node.uid < chosen.uid if self.first_fit else node.free < chosen.free
            ):
                chosen = node
        if chosen is None:
            for pool in pools:
                chosen = pool.shared.find(job.gpus, empty=True)
                if chosen is not None:
                    break
        if chosen is None:
            return False
        self._put_job(job, chosen, _node_exclusive(tier, mechanism, chosen.pool))
        return True

    def _put_job(self, job: Job, node: WorkNode, exclusive: bool) -> None:
        pool = node.pool
        grid = grid_for(pool.model) if pool.mig else None
        for gpu in node.take(job.gpus):
            gpu.job_gpus = job.gpus
            if grid is None:
                gpu.tenant = job.tenant
                continue
            # A whole GPU in a MIG pool is its full-GPU instance (7g; 4g on A30/RTX PRO).
            full = grid.full_gpu_index()
            gpu.counts = tuple(int(i == full) for i in range(len(grid.shapes)))
            gpu.instances.append((job.tenant, full, grid.shapes[full].starts[0]))
        node.free -= job.gpus
        node.tenants[job.tenant] = None
        if exclusive and node.exclusive is None:
            node.exclusive = job.tenant
            self.exclusive.setdefault(
                (job.tenant, pool.index), FreeIndex([], pool.spec.gpus_per_node, job.tenant)
            )
        if node.exclusive is None:
            pool.shared.push(node)
        else:
            self.exclusive[(node.exclusive, pool.index)].push(node)
        job.outcome.placed += 1
        job.outcome.pools[pool.spec.name] = None

    def _capacity_reason(self, job: Job) -> str:
        tier = self.tiers[job.tenant]
        parts = []
        for pool in job.pools:
            if pool.mig and (job.gpus > 1 or tier.needs_ecc):
                parts.append(f"{pool.spec.name} runs MIG")
                continue
            mine = [n for n in pool.nodes if n.exclusive in (None, job.tenant)]
            text = (
                f"{pool.spec.name}: {sum(n.free for n in mine)} GPUs free, largest block "
                f"{max((n.free for n in mine), default=0)}"
            )
            if _node_exclusive(tier, self.mechanism(job.tenant), pool):
                empty = sum(1 for n in pool.nodes if n.empty and n.exclusive is None)
                text += f", {empty} empty node(s) (the tenant needs nodes of its own)"
            parts.append(text)
        return f"no node with {job.gpus} free GPU(s) the tenant may use: " + "; ".join(parts)

    # -- 5. the frozen result ------------------------------------------------------------------

    def result(self) -> Plan:
        return build_plan(self)


def place(
    snapshot: Snapshot,
    *,
    recommended: bool = False,
    strategy: Strategy = Strategy.PACKED,
) -> Plan:
    """Decide tiers and place every demand of ``snapshot``'s inventory (pure).

    ``recommended``: place by each tenant's recommended mechanism instead of the weakest
    acceptable one. Raises InputError (located at the demand) for a demand no pool can serve.
    """
    planner = _Planner(snapshot, recommended, strategy)
    planner.collect()
    planner.place_mig()
    planner.place_whole()
    return planner.result()
