"""Firmware controls."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import expect_flag, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity
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
        yield expect_flag(
            view.resource,
            "Secure Boot state",
            "secure_boot",
            view.host["secure_boot"],
            want=True,
            says=("Secure Boot is on", "Secure Boot is off"),
        )
