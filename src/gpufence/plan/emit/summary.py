"""The human summary of a plan (text) and its machine-readable form (JSON)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from gpufence.plan.types import NodePlan, Plan, PoolPlan
from gpufence.policy import load_policy

__all__ = ["summary_dict", "summary_text"]

_MAX_NODES = 200


def summary_dict(
    plan: Plan, inventory: str, mig_labels: Mapping[str, str], files: Sequence[str]
) -> dict[str, Any]:
    """The `gpufence plan --format json` document (stable keys)."""
    return {
        "inventory": inventory,
        "policy": plan.mechanism_policy,
        "policy_version": load_policy().version,
        "strategy": plan.strategy,
        "complete": not plan.unplaced,
        "stats": plan.stats.model_dump(mode="json"),
        "bounds": [b.model_dump(mode="json") for b in plan.bounds],
        "tiers": [
            {
                "tenant": t.tenant,
                "trust": t.trust.value,
                "data_sensitivity": t.data_sensitivity.value,
                "weakest": t.weakest.value,
                "recommended": t.recommended.value,
                "placed_as": plan.mechanism_of(t.tenant).value,
                "rationale": [r.model_dump() for r in t.rationale],
            }
            for t in plan.tiers
        ],
        "pools": [
            {
                "name": p.name,
                "gpu_model": p.gpu_model,
                "site": p.site,
                "sharing": p.sharing.value,
                "mig_strategy": p.mig_strategy,
                "tenants": sorted({t for n in p.nodes for t in n.tenants}),
                "nodes": [
                    {
                        "name": n.name,
                        "tenants": list(n.tenants),
                        "exclusive": n.exclusive,
                        "gpus_used": sum(g.used for g in n.gpus),
                        "cc_mode": n.cc_mode.value if n.cc_mode else None,
                        "cc_multi_gpu": n.cc_multi_gpu.value if n.cc_multi_gpu else None,
                        "mig_config": mig_labels.get(n.name),
                    }
                    for n in p.nodes
                ],
            }
            for p in plan.pools
        ],
        "outcomes": [o.model_dump(mode="json") for o in plan.outcomes],
        "unplaced": [o.model_dump(mode="json") for o in plan.unplaced],
        "files": list(files),
    }


def _node_line(pool: PoolPlan, node: NodePlan, mig_labels: Mapping[str, str]) -> str:
    used = sum(g.used for g in node.gpus)
    who = ", ".join(node.tenants) or "(free)"
    parts = [f"{used}/{len(node.gpus)} GPUs", who]
    if node.exclusive:
        parts.append("reserved for its tenant")
    if node.cc_mode is not None:
        cc = node.cc_mode.value
        if node.cc_multi_gpu is not None and node.cc_multi_gpu.value != "none":
            cc += f" ({node.cc_multi_gpu.value})"
        parts.append(f"CC {cc}")
    if pool.sharing.value == "mig":
        geometries = Counter(" + ".join(g.geometry) or "empty" for g in node.gpus)
        shown = "; ".join(f"{n} x [{geometry}]" for geometry, n in geometries.items())
        parts.append(f"MIG {shown} (mig.config {mig_labels.get(node.name, '?')})")
    else:
        jobs = Counter(g.job_gpus for g in node.gpus if g.job_gpus)
        if jobs:
            parts.append(
                "jobs: "
                + ", ".join(f"{n // size} x {size}-GPU" for size, n in sorted(jobs.items()))
            )
    return f"    node {node.name}: " + "; ".join(parts)


def summary_text(
    plan: Plan, inventory: str, mig_labels: Mapping[str, str], files: Sequence[str]
) -> str:
    """The plan summary as text: tiers, placements, unplaced demand and files written."""
    policy = (
        "recommended mechanism" if plan.mechanism_policy == "recommended" else "weakest acceptable"
    )
    out = [
        f"gpufence plan for {inventory} (placement by {policy}; {plan.strategy}; "
        f"policy {load_policy().version}: `gpufence policy show`)",
        "",
        "Tiers",
    ]
    for t in plan.tiers:
        out.append(
            f"  {t.tenant} ({t.trust.value} trust, {t.data_sensitivity.value} data): weakest "
            f"{t.weakest.value}, recommended {t.recommended.value}"
        )
        out.extend(f"    - {r.id}: {r.text}" for r in t.rationale)
    out += ["", "Placement"]
    shown = 0
    for pool in plan.pools:
        tenants = sorted({t for n in pool.nodes for t in n.tenants})
        mode = f"MIG ({pool.mig_strategy})" if pool.sharing.value == "mig" else "whole GPUs"
        out.append(
            f"  pool {pool.name} ({pool.gpu_model}, site {pool.site}): {mode}; tenants: "
            + (", ".join(tenants) or "none")
        )
        for node in pool.nodes:
            if shown == _MAX_NODES:
                out.append(f"    ... more nodes in plan.json ({_MAX_NODES} shown)")
            shown += 1
            if shown <= _MAX_NODES:
                out.append(_node_line(pool, node, mig_labels))
    out += ["", "Demand"]
    for o in plan.outcomes:
        unit = "instances" if "MIG" in o.what else "jobs"
        line = f"  {o.tenant} #{o.demand + 1} ({o.what}): {o.placed}/{o.requested} {unit} placed"
        if o.pools:
            line += f" on {', '.join(o.pools)}"
        if o.unplaced_reason:
            line += f"\n    NOT PLACED: {o.requested - o.placed} {unit}: {o.unplaced_reason}"
        out.append(line)
    s = plan.stats
    out += [
        "",
        f"GPUs: {s.gpus_used} of {s.gpus_total} used ({s.whole_gpus} whole, {s.mig_gpus} MIG, "
        f"{s.mig_gpus_partial} MIG GPU(s) with free slices, {s.idle_on_exclusive_nodes} idle on "
        "nodes reserved for one tenant)",
        f"Lower bound: {s.lower_bound} GPUs (whole GPUs + LP bound of each MIG group); "
        f"gap {s.gap_percent:.2f} %",
        "Unplaced: " + (f"{len(plan.unplaced)} demand(s), see above" if plan.unplaced else "none"),
    ]
    if files:
        out += ["", "Files"] + [f"  {f}" for f in files]
    return "\n".join(out) + "\n"
