"""Host software controls: NVIDIA GPU driver and Container Toolkit versions with known CVEs.

Versions come from node evidence: the GPU collectors (``gpufence collect gpu``, NVML or
nvidia-smi) record the driver version in ``raw.driver_version``; an evidence document may also
carry ``software.nvidia_driver_version`` / ``software.nvidia_container_toolkit_version`` as
observed facts. No gpufence collector records the Container Toolkit version yet, so FW-008 is
NOT_EVALUATED unless such evidence is supplied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gpufence.catalog.vulnerabilities import (
    Hit,
    Judgement,
    VulnerabilityCatalog,
    judge_driver,
    judge_toolkit,
    vulnerability_catalog,
)
from gpufence.controls._common import CLUSTER, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.snapshot import NodeView, Snapshot

_BULLETINS = "https://www.nvidia.com/en-us/security/"
_CTK_NOTES = (
    "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/release-notes.html"
)

DRIVER_FACT = "software.nvidia_driver_version"
TOOLKIT_FACT = "software.nvidia_container_toolkit_version"


def _observed_version(
    snap: Snapshot, view: NodeView, fact: str, raw_key: str | None, how: str
) -> tuple[str | None, str]:
    """Newest recorded version for the node and where it came from, or (None, why not)."""
    documents = snap.evidence_for(view.resource)
    for doc, origin in reversed(documents):
        value = doc.observed.get(fact)
        if value is None and raw_key is not None:
            value = doc.raw.get(raw_key)
        if isinstance(value, str) and value.strip():
            return value.strip(), f"{origin} ({doc.collector} at {doc.collected_at.isoformat()})"
    for doc, origin in reversed(documents):
        for missing in doc.not_observed:
            if missing.fact == fact:
                return None, f"{missing.reason} ({origin})"
    if not documents:
        return None, f"no evidence for {view.resource} ({how})"
    return None, f"the evidence for {view.resource} does not record {fact} ({how})"


def _hit(hit: Hit, version: str) -> str:
    kev = f", in CISA KEV ({hit.kev_origin})" if hit.kev else ""
    return (
        f"{', '.join(hit.cves)} ({hit.title}{kev}): {version} is below {hit.fixed} ({hit.advisory})"
    )


def _hits(hits: tuple[Hit, ...], version: str) -> str:
    return "; ".join(_hit(h, version) for h in hits)


def _per_node(
    snap: Snapshot,
    what: str,
    fact: str,
    raw_key: str | None,
    judge: Callable[[VulnerabilityCatalog, str, Mapping[str, str] | None], Judgement],
    how: str,
) -> Iterator[Outcome]:
    if not snap.nodes:
        yield not_applicable("no nodes in the inventory")
        return
    catalog = vulnerability_catalog()
    versions = {v.resource: _observed_version(snap, v, fact, raw_key, how) for v in snap.nodes}
    if all(version is None for version, _ in versions.values()):
        # Nothing recorded anywhere: one finding for the fleet, not one per node.
        names = [v.node.name for v in snap.nodes]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        yield Outcome(
            Status.NOT_EVALUATED,
            CLUSTER,
            f"the {what} version is recorded for none of {len(names)} node(s) ({shown}); {how}",
            {"missing": fact, "nodes": names},
            ("node_pools",),
        )
        return
    for view in snap.nodes:
        version, origin = versions[view.resource]
        if version is None:
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"the {what} version is unknown: {origin}",
                {"missing": fact},
                view.pointer,
            )
            continue
        found = judge(catalog, version, snap.context.known_exploited)
        evidence: dict[str, Any] = {
            "version": {"value": version, "source": origin},
            "checked": list(found.checked),
            "catalog_reviewed": catalog.reviewed.isoformat(),
        }
        if found.status == "vulnerable":
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"{what} {version}: {_hits(found.hits, version)}",
                {**evidence, "cves": [c for h in found.hits for c in h.cves]},
                view.pointer,
                Severity.CRITICAL if any(h.kev for h in found.hits) else None,
            )
        elif found.status == "unknown":
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"{what} {version} cannot be judged: {found.reason}",
                {**evidence, "missing": "applicable bulletin data"},
                view.pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                f"{what} {version} is at or above the fixed version of every catalog entry "
                f"({', '.join(found.checked)})",
                evidence,
                view.pointer,
            )


@control(
    id="FW-007",
    title="NVIDIA GPU driver version has known vulnerabilities",
    plane=Plane.FW,
    severity=Severity.HIGH,
    failure_mode="The GPU kernel driver is shared by every tenant on the node; a tenant who "
    "exploits a driver CVE escalates to root on the host or reads other tenants' GPU memory.",
    remediation="Update the driver to the fixed release of its branch named in the finding (or "
    "to a supported branch); track NVIDIA's security bulletins.",
    references=(_BULLETINS, "https://nvidia.custhelp.com/app/answers/detail/a_id/5630"),
    peer_facts=(DRIVER_FACT,),  # one cluster finding sums up the nodes without a version
)
def driver_vulnerable(snap: Snapshot) -> Iterator[Outcome]:
    yield from _per_node(
        snap,
        "NVIDIA driver",
        DRIVER_FACT,
        "driver_version",
        judge_driver,
        "run gpufence collect gpu on the node and pass its output to --evidence",
    )


@control(
    id="FW-008",
    title="NVIDIA Container Toolkit version has known container escapes",
    plane=Plane.FW,
    severity=Severity.CRITICAL,
    failure_mode="A malicious container image escapes to the host through a vulnerable NVIDIA "
    "Container Toolkit (CVE-2024-0132, CVE-2025-23266) and takes over every tenant on the node.",
    remediation="Update the NVIDIA Container Toolkit (GPU Operator toolkit image) to the fixed "
    "version named in the finding, at least 1.17.8.",
    references=(_CTK_NOTES, "https://nvidia.custhelp.com/app/answers/detail/a_id/5582"),
    peer_facts=(TOOLKIT_FACT,),  # one cluster finding sums up the nodes without a version
)
def container_toolkit_vulnerable(snap: Snapshot) -> Iterator[Outcome]:
    yield from _per_node(
        snap,
        "NVIDIA Container Toolkit",
        TOOLKIT_FACT,
        None,
        judge_toolkit,
        f"no gpufence collector records it yet: supply evidence with {TOOLKIT_FACT} "
        "(e.g. from `nvidia-ctk --version`)",
    )
