"""Small inventory builders and the plan invariants every placement must keep."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from gpufence.catalog import load_catalog
from gpufence.load.inventory import load_snapshot
from gpufence.model.inventory import CcMode, Inventory, Ownership, SharingMode
from gpufence.model.snapshot import Snapshot
from gpufence.plan import Plan, check_geometry, verify_plan
from gpufence.plan.tiers import Mechanism
from tests.inventories import write_inventory


def site(name: str, ownership: str = "owned") -> dict[str, Any]:
    return {"name": name, "country": "DE", "ownership": ownership}


def pool(
    name: str, model: str, *, site: str = "s1", nodes: int = 1, gpn: int = 8
) -> dict[str, Any]:
    return {
        "name": name,
        "site": site,
        "gpu_model": model,
        "gpus_per_node": gpn,
        "sharing": "dedicated",
        "nodes": [{"name": f"{name}-n{i}"} for i in range(nodes)],
    }


def tenant(name: str, trust: str, sensitivity: str, *demand: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "trust": trust,
        "data_sensitivity": sensitivity,
        "demand": list(demand),
    }


def inventory(
    pools: list[dict[str, Any]],
    tenants: list[dict[str, Any]],
    sites: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "version": 1,
        "organization": {"name": "Test", "country": "DE"},
        "sites": sites or [site("s1")],
        "tenants": tenants,
        "node_pools": pools,
    }


def snapshot(data: dict[str, Any]) -> Snapshot:
    """A snapshot straight from a dict (no file: fast, for property tests)."""
    inv = Inventory.model_validate(data)
    catalog = load_catalog()
    models = {p.name: catalog.lookup(p.gpu_model) for p in inv.node_pools}
    return Snapshot(inventory=inv, source_file="<test>", gpu_models=models)


def snapshot_file(tmp_path: Path, data: dict[str, Any]) -> Snapshot:
    return load_snapshot(write_inventory(tmp_path, data))


def check_plan(snap: Snapshot, plan: Plan) -> None:
    """Every invariant of a sound plan; AssertionError names the first one broken."""
    catalog = load_catalog()
    tiers = {t.tenant: t for t in plan.tiers}
    sites = {s.name: s for s in snap.inventory.sites}
    used = 0
    mig_placed: Counter[tuple[str, str]] = Counter()
    for pool_plan, spec in zip(plan.pools, snap.inventory.node_pools, strict=True):
        model = catalog.get(pool_plan.gpu_model)
        assert model is not None and model.key == snap.gpu_models[spec.name].key
        site = sites[spec.site]
        assert (pool_plan.sharing is SharingMode.MIG) == all(n.mig for n in pool_plan.nodes)
        assert pool_plan.sharing in (SharingMode.MIG, SharingMode.DEDICATED)
        if pool_plan.sharing is SharingMode.MIG:
            assert model.mig_capable and not model.consumer
        assert [n.name for n in pool_plan.nodes] == [n.name for n in spec.nodes]
        for node in pool_plan.nodes:
            assert len(node.gpus) == spec.gpus_per_node
            on_node: set[str] = set()
            for gpu in node.gpus:
                # No GPU oversubscribed: a whole owner or instances, never both.
                assert not (gpu.tenant and gpu.instances)
                if gpu.tenant:
                    on_node.add(gpu.tenant)
                if gpu.used:
                    used += 1
                if not gpu.instances:
                    continue
                assert node.mig
                profiles = [model.mig_profile(i.profile) for i in gpu.instances]
                assert all(p is not None for p in profiles)
                result = check_geometry(model, [p for p in profiles if p is not None])
                assert result.valid, result.reason
                cells: set[int] = set()
                for instance, profile in zip(gpu.instances, profiles, strict=True):
                    assert profile is not None
                    assert instance.start in profile.starts  # a legal start
                    assert instance.size == profile.memory_units
                    span = set(range(instance.start, instance.start + instance.size))
                    assert not span & cells
                    cells |= span
                    on_node.add(instance.tenant)
                    if gpu.job_gpus is None:
                        mig_placed[(instance.tenant, instance.profile)] += 1
                owners = {i.tenant for i in gpu.instances}
                if len(owners) > 1:
                    # MIG co-tenancy only when every tenant's tier allows it.
                    for owner in owners:
                        assert plan.mechanism_of(owner).shares_gpu, owner
                        assert not tiers[owner].needs_ecc
            assert set(node.tenants) == on_node
            if node.exclusive:
                assert len(node.tenants) == 1
            shared = len(node.tenants) > 1
            for name in node.tenants:
                tier = tiers[name]
                if shared:
                    assert plan.mechanism_of(name) is not Mechanism.DEDICATED_NODE
                    assert not model.consumer
                    assert tier.data_sensitivity.value != "regulated"
                if tier.needs_ecc:
                    assert model.ecc
                    if shared or site.ownership is Ownership.RENTED:
                        assert model.cc.supports_cc and node.cc_mode is CcMode.ON
            if node.cc_mode is CcMode.ON:
                assert model.cc.supports_cc and not node.mig
    assert plan.stats.gpus_used == used
    assert plan.stats.gpus_used >= plan.stats.lower_bound
    for bound in plan.bounds:
        assert bound.used >= bound.gpus >= bound.slice_bound
    # Placed MIG instances match the outcomes, per tenant and profile.
    wanted: Counter[tuple[str, str]] = Counter()
    by_name = {t.name: t for t in snap.inventory.tenants}
    for outcome in plan.outcomes:
        assert 0 <= outcome.placed <= outcome.requested
        assert (outcome.unplaced_reason is None) == (outcome.placed == outcome.requested)
        demand = by_name[outcome.tenant].demand[outcome.demand]
        if demand.mig_profile is not None:
            model_names = {p.gpu_model for p in plan.pools}
            names = {
                m.mig_profile(demand.mig_profile).name  # type: ignore[union-attr]
                for m in (catalog.get(k) for k in model_names)
                if m is not None and m.mig_profile(demand.mig_profile) is not None
            }
            assert len(names) == 1
            wanted[(outcome.tenant, names.pop())] += outcome.placed
    assert +mig_placed == +wanted
    # The planned cluster passes every GPU-/CC- control.
    failures = verify_plan(snap, plan)
    assert not failures, [(f.control, f.resource, f.message) for f in failures]
