"""The isolation planner: tenant model -> mechanism -> exact placement -> configs.

- :mod:`gpufence.plan.tiers`: the mechanism each tenant needs (weakest acceptable, recommended)
  and the rules behind it;
- :mod:`gpufence.plan.mig`: MIG geometry of one GPU (validity, placements, enumeration);
- :mod:`gpufence.plan.packing`: MIG instances onto GPUs (LP lower bound, pattern packer, first fit);
- :mod:`gpufence.plan.placement`: the fleet placement;
- :mod:`gpufence.plan.planned`: the planned inventory and the audit it must pass;
- :mod:`gpufence.plan.emit`: mig-parted, device-plugin and Kubernetes configs, the summary.
"""

from __future__ import annotations

from gpufence.plan.mig import (
    GeometryCheck,
    MigGrid,
    Placement,
    check_geometry,
    grid_for,
    parse_profile_list,
    resolve_profiles,
)
from gpufence.plan.placement import Strategy, place
from gpufence.plan.planned import planned_inventory, planned_snapshot, verify_plan
from gpufence.plan.tiers import Mechanism, TierDecision, decide_tiers
from gpufence.plan.types import Plan

__all__ = [
    "GeometryCheck",
    "Mechanism",
    "MigGrid",
    "Placement",
    "Plan",
    "Strategy",
    "TierDecision",
    "check_geometry",
    "decide_tiers",
    "grid_for",
    "parse_profile_list",
    "place",
    "planned_inventory",
    "planned_snapshot",
    "resolve_profiles",
    "verify_plan",
]
