"""Compliance controls: export licences for advanced-computing GPUs by destination and owner.

CMP-001 applies the dated rule set of :mod:`gpufence.catalog.export_rules` (an engineering aid,
not legal advice; docs/export-control.md): the version in force on the audit date (or
``--as-of``), each pool's part classification, the site's country group and the owner's
headquarters, against the licences recorded per site.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from gpufence.catalog import lookup
from gpufence.catalog.export_rules import ExportRules, export_rules, licence_requirements
from gpufence.controls._common import CLUSTER, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.errors import UnknownGpuModelError
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import ExportAuthorization, Site
from gpufence.model.snapshot import Snapshot

_EAR_742 = "https://www.ecfr.gov/current/title-15/subtitle-B/chapter-VII/subchapter-C/part-742"
_EAR_744 = "https://www.ecfr.gov/current/title-15/subtitle-B/chapter-VII/subchapter-C/part-744"
_EAR_740_SUPP1 = (
    "https://www.ecfr.gov/current/title-15/subtitle-B/chapter-VII/subchapter-C/part-740"
)


def _covers(auth: ExportAuthorization, gpu_key: str, day: dt.date) -> bool:
    if auth.expires is not None and auth.expires < day:
        return False
    if not auth.gpu_models:
        return True
    for name in auth.gpu_models:
        try:
            if lookup(name).key == gpu_key:
                return True
        except UnknownGpuModelError:
            continue
    return False


def _stale(rules: ExportRules, snap: Snapshot) -> Outcome | None:
    ctx = snap.context
    age = (ctx.judged_on - rules.reviewed).days
    if age <= ctx.export_rules_max_age_days:
        return None
    return Outcome(
        Status.NOT_EVALUATED,
        CLUSTER,
        f"the export rule set was last reviewed on {rules.reviewed}, {age} days before "
        f"{ctx.judged_on} (limit {ctx.export_rules_max_age_days} days, "
        "--export-rules-max-age); export rules change often: update gpufence or review the rules",
        {"missing": "current export rules", "rules_reviewed": rules.reviewed.isoformat()},
        ("organization",),
    )


@control(
    id="CMP-001",
    title="Export-controlled GPUs without a recorded licence for their site or owner",
    plane=Plane.CMP,
    severity=Severity.HIGH,
    failure_mode="Operating 3A090-class accelerators (H100/H200/B200/B300 ...) in a destination "
    "of Country Group D:1/D:4/D:5 or Macau, or for an owner headquartered in D:5 or Macau, "
    "without an export licence exposes the owner and its suppliers to EAR violations.",
    remediation="Obtain (or confirm) the export licence or licence exception and record it "
    "under the site's export_authorizations, or move the parts; this is an engineering aid, "
    "not legal advice: confirm with your export-compliance counsel.",
    references=(_EAR_742, _EAR_744, _EAR_740_SUPP1),
)
def export_licence_missing(snap: Snapshot) -> Iterator[Outcome]:
    if not snap.inventory.node_pools:
        yield not_applicable("no node pools in the inventory")
        return
    rules = export_rules()
    day = snap.context.judged_on
    if (stale := _stale(rules, snap)) is not None:
        yield stale
        return
    version = rules.version_on(day)
    if version is None:
        yield Outcome(
            Status.NOT_EVALUATED,
            CLUSTER,
            f"no export rule set is in force on {day} (first: {rules.versions[0].effective})",
            {"missing": "rule set for the date"},
            ("organization",),
        )
        return
    org = snap.inventory.organization
    for index, pool in enumerate(snap.inventory.node_pools):
        site: Site = snap.sites[pool.site]
        gpu = snap.gpu_models[pool.name]
        base: dict[str, Any] = {
            "gpu_model": gpu.key,
            "site_country": site.country,
            "owner_headquarters": list(org.headquarters),
            "rule_set": version.id,
            "rule_set_effective": version.effective.isoformat(),
            "judged_on": day.isoformat(),
        }
        pointer = ("node_pools", index, "gpu_model")
        classes = rules.classes_of(gpu.key, day)
        if not classes:
            yield Outcome(
                Status.NOT_EVALUATED,
                f"pool/{pool.name}",
                f"{gpu.name} has no export classification in rule set {version.id}: classify it "
                "(ECCN) yourself; gpufence cannot say whether a licence is needed",
                {**base, "missing": "export classification"},
                pointer,
            )
            continue
        needs = licence_requirements(
            rules, version, gpu.key, day, destination=site.country, headquarters=org.headquarters
        )
        eccn = ", ".join(c.id for c in classes)
        if not needs:
            yield Outcome(
                Status.PASS,
                f"pool/{pool.name}",
                f"{gpu.name} ({eccn}) in {site.country} for an owner headquartered in "
                f"{'/'.join(org.headquarters)}: no licence requirement under rule set "
                f"{version.id} (destination not in D:1/D:4/D:5/Macau, headquarters not in "
                "D:5/Macau)",
                {**base, "classes": [c.id for c in classes]},
                pointer,
            )
            continue
        reasons = [
            {
                "requirement": n.requirement.id,
                "class": n.export_class.id,
                "rule": n.requirement.rule,
                "why": n.reason,
                "review_policy": n.review_policy,
                "sources": rules.cite(n.requirement.sources),
            }
            for n in needs
        ]
        why = "; ".join(f"{n.reason} ({n.requirement.rule})" for n in needs)
        covering = [a for a in site.export_authorizations if _covers(a, gpu.key, day)]
        site_ptr = snap.pointer_of("sites", site.name)
        if covering:
            refs = ", ".join(f"{a.kind.value} {a.reference}" for a in covering)
            yield Outcome(
                Status.PASS,
                f"pool/{pool.name}",
                f"{gpu.name} ({eccn}) needs a licence ({why}); recorded for site {site.name}: "
                f"{refs}",
                {
                    **base,
                    "requirements": reasons,
                    "authorizations": [a.reference for a in covering],
                },
                (*site_ptr, "export_authorizations"),
            )
            continue
        expired = [a.reference for a in site.export_authorizations if a.expires and a.expires < day]
        note = f"; expired: {', '.join(expired)}" if expired else ""
        yield Outcome(
            Status.FAIL,
            f"pool/{pool.name}",
            f"{gpu.name} ({eccn}) at site {site.name} ({site.country}) needs an export licence "
            f"under rule set {version.id}: {why}; review policy: {needs[0].review_policy}; no "
            f"licence or licence exception covering it is recorded{note}",
            {**base, "requirements": reasons},
            pointer,
        )
