"""Mutations of valid evidence never pass: flipped bytes, truncation, swapped certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence.attest.device_reports import DeviceEvidence, load_report_pair
from gpufence.attest.rim import check_rim
from gpufence.attest.verify import VerifyOptions, verify_device

from . import devicefactory as f
from .conftest import FROZEN, SAMPLE_NONCE

NO_RIMS = ("revocation", "rim.*", "measurements", "fwid")
"""The laxest waivers: a mutation must fail on what is still checked, not just be incomplete."""


@pytest.fixture
def switch(unit: Path) -> DeviceEvidence:
    return load_report_pair(unit / "switchAttestationReport.txt", unit / "switchCertChain.txt")


def _passes(evidence: DeviceEvidence, rims: list[object] = ()) -> bool:  # type: ignore[assignment]
    result = verify_device(evidence, VerifyOptions(FROZEN, SAMPLE_NONCE), rims)  # type: ignore[arg-type]
    return result.judge(NO_RIMS) == "pass"


def test_baseline_passes(switch: DeviceEvidence, unit: Path) -> None:
    rim = check_rim(
        (unit / "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml").read_bytes(), FROZEN
    )
    assert _passes(switch, [rim])


def test_flipping_any_byte_never_passes(switch: DeviceEvidence) -> None:
    data = switch.report
    # Every byte of the headers, opaque data and signature; every 7th byte of the measurements.
    opaque_start = 37 + 8 + 1947 + 32
    positions = sorted(
        {*range(0, 45), *range(45, opaque_start, 7), *range(opaque_start, len(data))}
    )
    for pos in positions:
        mutated = bytearray(data)
        mutated[pos] ^= 0x01
        evidence = DeviceEvidence(bytes(mutated), switch.certificates, switch.arch)
        assert not _passes(evidence), f"byte {pos} flipped still passes"


def test_truncation_and_garbage_tail_never_pass(switch: DeviceEvidence) -> None:
    data = switch.report
    for cut in [*range(0, len(data), 97), len(data) - 1]:
        assert not _passes(DeviceEvidence(data[:cut], switch.certificates)), cut
    assert not _passes(DeviceEvidence(data + b"\x01", switch.certificates))


def test_swapped_certificates_never_pass(switch: DeviceEvidence, unit: Path) -> None:
    gpu = load_report_pair(unit / "hopperAttestationReport.txt", unit / "hopperCertChain.txt")
    other = load_report_pair(
        unit / "sample_attestation_data/switch/switchAttestationReport.txt",
        unit / "sample_attestation_data/switch/switchCertChain.txt",
    )
    certs = list(switch.certificates)
    swaps = [
        gpu.certificates,  # another device's whole chain
        (gpu.certificates[0], *certs[1:]),  # another leaf
        (certs[1], certs[0], *certs[2:]),  # leaf and BROM swapped
        tuple(reversed(certs)),
        tuple(certs[1:]),  # leaf missing
        (certs[0], *certs[2:]),  # BROM missing
    ]
    for chain in swaps:
        assert not _passes(DeviceEvidence(switch.report, tuple(chain))), [
            c.subject.rfc4514_string() for c in chain
        ]
    # A genuinely different switch chain with this report: only the signature can tell them apart.
    assert other.certificates == switch.certificates or not _passes(
        DeviceEvidence(switch.report, other.certificates)
    )


def test_generated_device_mutations(tmp_path: Path) -> None:
    device = f.make_device("HOPPER")
    nonce = bytes(range(32))
    report = f.build_report(device, nonce, f.measurements())
    options = VerifyOptions(FROZEN, nonce, device_root=device.root)
    good = DeviceEvidence(report, tuple(device.chain), "HOPPER")
    # No RIM here: the strict verdict is incomplete; with RIM steps waived it passes.
    assert verify_device(good, options).verdict == "incomplete"
    assert verify_device(good, options).judge(NO_RIMS) == "pass"
    impostor = f.make_device("HOPPER")
    # Same report, chain of a device under another root: chain fails against our anchor.
    assert (
        verify_device(DeviceEvidence(report, tuple(impostor.chain), "HOPPER"), options).verdict
        == "fail"
    )
