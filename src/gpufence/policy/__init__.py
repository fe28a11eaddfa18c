"""The one isolation policy: tier rules as versioned data, used by `plan` and by the controls.

:func:`load_policy` gives the rule set (id, text, rationale, sources, judging controls);
:mod:`gpufence.policy.tiers` decides a tenant's mechanism from it. Controls put the rule id in a
finding's evidence (``policy_rule``) so a FAIL names the rule it judges.
"""

from __future__ import annotations

from gpufence.policy.rules import Policy, PolicyRule, load_policy, parse_policy, rule
from gpufence.policy.tiers import (
    SOFT_VGPU_MODES,
    Mechanism,
    Rule,
    TierDecision,
    decide_tier,
    decide_tiers,
    fired,
    may_share_gpu,
)

__all__ = [
    "SOFT_VGPU_MODES",
    "Mechanism",
    "Policy",
    "PolicyRule",
    "Rule",
    "TierDecision",
    "decide_tier",
    "decide_tiers",
    "fired",
    "load_policy",
    "may_share_gpu",
    "parse_policy",
    "rule",
    "rule_evidence",
]


def rule_evidence(rule_id: str) -> dict[str, object]:
    """Evidence entries naming the policy rule a finding judges, with its rationale."""
    item = rule(rule_id)
    return {
        "policy_rule": item.id,
        "policy_version": load_policy().version,
        "rationale": item.rationale,
        "advisory": item.advisory,
    }
