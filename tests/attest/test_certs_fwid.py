"""Chains under a test device CA in NVIDIA's layout: FWID encodings, validity at --at."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpufence.attest.certs import leaf_fwid, verify_chain
from gpufence.attest.device_reports import DeviceEvidence
from gpufence.attest.verify import VerifyOptions, verify_device

from . import devicefactory as f
from .conftest import FROZEN


@pytest.mark.parametrize("arch", ["HOPPER", "BLACKWELL"])
def test_fwid_encodings_hopper_and_blackwell(arch: str) -> None:
    device = f.make_device(arch)
    assert leaf_fwid(device.chain[0]) == device.fwid
    nonce = b"\x07" * 32
    report = f.build_report(device, nonce, f.measurements())
    result = verify_device(
        DeviceEvidence(report, tuple(device.chain), arch),
        VerifyOptions(FROZEN, nonce, device_root=device.root),
    )
    assert result.step("fwid").status == "pass"  # type: ignore[union-attr]
    # A report whose FWID differs from the leaf's: fails the fwid step, not silently skipped.
    other = f.make_device(arch)
    forged = f.build_report(
        device, nonce, f.measurements(), include_fwid=False, extra_opaque=[(20, other.fwid)]
    )
    result = verify_device(
        DeviceEvidence(forged, tuple(device.chain), arch),
        VerifyOptions(FROZEN, nonce, device_root=device.root),
    )
    assert result.step("fwid").status == "fail" and result.verdict == "fail"  # type: ignore[union-attr]


def test_chain_validity_at_time_and_expired_status() -> None:
    device = f.make_device("HOPPER", leaf_not_after=datetime(2025, 1, 1, tzinfo=UTC))
    assert (
        verify_chain(
            device.chain, device.root, datetime(2024, 6, 1, tzinfo=UTC), expected_length=5
        ).status
        == "valid"
    )
    late = verify_chain(device.chain, device.root, FROZEN, expected_length=5)
    assert late.status == "expired" and "expired" in late.detail
    early = verify_chain(
        device.chain, device.root, datetime(2023, 1, 1, tzinfo=UTC), expected_length=5
    )
    assert early.status == "invalid" and "not valid before" in early.detail


def test_root_sent_along_must_be_the_pinned_one() -> None:
    device = f.make_device("HOPPER")
    other_root, _ = f.make_root("Test Device Identity CA")
    result = verify_chain([*device.chain[:-1], other_root], device.root, FROZEN)
    assert result.status == "invalid" and "fingerprint differs" in result.detail


def test_malformed_dice_extension_fails_fwid() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(f._name("x"))
        .issuer_name(f._name("x"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(f.NOT_BEFORE)
        .not_valid_after(f.NOT_AFTER)
        .add_extension(x509.UnrecognizedExtension(f.DICE_OID, b"\x30\x03\x04\x01"), critical=False)
        .sign(key, hashes.SHA384())
    )
    with pytest.raises(ValueError):
        leaf_fwid(cert)
