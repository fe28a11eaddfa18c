"""GPU/NVSwitch certificate chains: every certificate sent must be on the verified path.

Before issue 12's last round, a root sent along with its signature altered was ignored (the path
ended at the pinned root instead) and the chain still verified. Mutations of the real samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gpufence.attest.certs import DEVICE_CHAIN_LENGTH, device_root, verify_chain
from gpufence.attest.device_reports import load_report_pair

from .conftest import FROZEN

SAMPLES = [
    ("switchAttestationReport.txt", "switchCertChain.txt"),
    ("hopperAttestationReport.txt", "hopperCertChain.txt"),
]


def _chain(unit: Path, sample: tuple[str, str]) -> list[x509.Certificate]:
    return list(load_report_pair(unit / sample[0], unit / sample[1]).certificates)


def _signature_flipped(cert: x509.Certificate) -> x509.Certificate:
    """The same certificate with the last byte of its signature changed (still parses)."""
    der = bytearray(cert.public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


def _verify(certs: list[x509.Certificate]) -> tuple[str, str]:
    result = verify_chain(certs, device_root(), FROZEN, expected_length=DEVICE_CHAIN_LENGTH)
    return result.status, result.detail


@pytest.mark.parametrize("sample", SAMPLES, ids=["nvswitch", "hopper"])
def test_the_real_chain_verifies(unit: Path, sample: tuple[str, str]) -> None:
    certs = _chain(unit, sample)
    assert certs[-1].public_bytes(Encoding.DER) == device_root().public_bytes(Encoding.DER)
    assert _verify(certs)[0] == "valid"


@pytest.mark.parametrize("sample", SAMPLES, ids=["nvswitch", "hopper"])
def test_a_certificate_with_an_altered_signature_is_refused(
    unit: Path, sample: tuple[str, str]
) -> None:
    certs = _chain(unit, sample)
    for position in range(len(certs)):
        mutated = [*certs]
        mutated[position] = _signature_flipped(certs[position])
        status, detail = _verify(mutated)
        assert status == "invalid", (position, detail)
    # The sent root in particular: the pinned root would complete the path, yet the chain as
    # sent carries a certificate that does not verify.
    mutated = [*certs[:-1], _signature_flipped(certs[-1])]
    status, detail = _verify(mutated)
    assert status == "invalid" and f"certificate {len(certs) - 1}" in detail
    assert "not on the path" in detail


def test_a_stray_certificate_is_refused(unit: Path) -> None:
    switch = _chain(unit, SAMPLES[0])
    hopper = _chain(unit, SAMPLES[1])
    for stray in (hopper[1], hopper[2]):  # real NVIDIA certificates, not of this device
        for position in (1, len(switch) - 1, len(switch)):
            certs = [*switch[:position], stray, *switch[position:]]
            status, detail = _verify(certs)
            assert status == "invalid" and "not on the path" in detail, (position, detail)
    # A duplicate of a certificate on the path changes nothing that is trusted: accepted.
    assert _verify([*switch[:2], switch[1], *switch[2:]])[0] == "valid"
