"""Compliance controls."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.snapshot import Snapshot


@control(
    id="CMP-001",
    title="Export-controlled GPUs in a site outside the owner's country",
    plane=Plane.CMP,
    severity=Severity.HIGH,
    failure_mode="Shipping or operating export-controlled accelerators (B300/GB300 class) in "
    "another country without a licence exposes the owner to export-control violations.",
    remediation="Confirm an export licence or licence exception covers this site's country "
    "(EAR ECCN 3A090/4A090), or keep these parts in the owner's country; record the basis.",
    references=(
        "https://www.ecfr.gov/current/title-15/subtitle-B/chapter-VII/subchapter-C/part-774",
        "https://www.bis.gov/",
    ),
)
def export_controlled_abroad(snap: Snapshot) -> Iterator[Outcome]:
    owner = snap.inventory.organization.country
    scoped = [
        (index, pool)
        for index, pool in enumerate(snap.inventory.node_pools)
        if snap.gpu_models[pool.name].export_controlled
    ]
    if not scoped:
        yield not_applicable("no export-controlled GPU model in the inventory")
    for index, pool in scoped:
        site = snap.sites[pool.site]
        gpu = snap.gpu_models[pool.name]
        abroad = site.country != owner
        yield Outcome(
            Status.FAIL if abroad else Status.PASS,
            f"pool/{pool.name}",
            f"{gpu.name} in site {site.name} ({site.country}); owner is in {owner}",
            {"gpu_model": gpu.key, "site_country": site.country, "owner_country": owner},
            ("node_pools", index, "site"),
        )
