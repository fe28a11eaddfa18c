"""Firmware controls."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import fact_evidence, not_applicable, unknown_fact
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.snapshot import Snapshot


@control(
    id="FW-001",
    title="Secure Boot off on a GPU node",
    plane=Plane.FW,
    severity=Severity.HIGH,
    failure_mode="Without UEFI Secure Boot a tenant with root (or an attacker) can persist a "
    "bootkit or unsigned kernel module below the GPU driver that survives re-imaging.",
    remediation="Enable UEFI Secure Boot in deployed/user mode on every GPU node (Redfish "
    "Systems/{id}/SecureBoot SecureBootEnable=true) and sign the NVIDIA kernel modules.",
    references=(
        "https://csrc.nist.gov/pubs/sp/800/193/final",
        "https://media.defense.gov/2023/Jun/14/2003241405/-1/-1/0/CSI_HARDEN_BMCS.PDF",
    ),
)
def secure_boot_off(snap: Snapshot) -> Iterator[Outcome]:
    if not snap.nodes:
        yield not_applicable("no nodes in the inventory")
    for view in snap.nodes:
        fact = view.host["secure_boot"]
        if not fact.known:
            yield unknown_fact(view.resource, "Secure Boot state", fact)
            continue
        on = fact.value is True
        yield Outcome(
            Status.PASS if on else Status.FAIL,
            view.resource,
            f"Secure Boot is {'on' if on else 'off'}",
            fact_evidence(secure_boot=fact),
            fact.pointer,
        )
