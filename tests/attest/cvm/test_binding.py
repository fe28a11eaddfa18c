"""The report-data binding: formula, unambiguity, and a GPU report replayed from another CVM."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gpufence.attest.cvm.binding import (
    BINDING_LABEL,
    expected_report_data,
    gpu_evidence_digest,
)
from gpufence.attest.cvm.evidence import CvmEvidenceError, cvm_evidence_from_json
from gpufence.attest.cvm.snp import SnpOptions, verify_snp
from tests.attest.cvmfactory import AT, AmdTestPki, SnpFields


def test_formula_is_the_documented_one() -> None:
    nonce, spki, digest = b"n" * 32, b"k" * 91, b"d" * 48
    manual = hashlib.sha512(
        BINDING_LABEL
        + (32).to_bytes(4, "big")
        + nonce
        + (91).to_bytes(4, "big")
        + spki
        + (48).to_bytes(4, "big")
        + digest
    ).digest()
    assert expected_report_data(nonce, spki, digest) == manual
    assert len(manual) == 64


def test_every_input_changes_the_binding() -> None:
    base = expected_report_data(b"n" * 32, b"k" * 91, b"d" * 48)
    assert expected_report_data(b"m" * 32, b"k" * 91, b"d" * 48) != base
    assert expected_report_data(b"n" * 32, b"j" * 91, b"d" * 48) != base
    assert expected_report_data(b"n" * 32, b"k" * 91, b"e" * 48) != base
    # Moving a byte across a field boundary changes it too (length prefixes).
    assert expected_report_data(b"n" * 31, b"n" + b"k" * 91, b"d" * 48) != base


def test_gpu_digest_depends_on_order_and_split() -> None:
    a, b = b"report-a", b"report-b"
    assert gpu_evidence_digest([a, b]) != gpu_evidence_digest([b, a])
    assert gpu_evidence_digest([a + b]) != gpu_evidence_digest([a, b])
    assert gpu_evidence_digest([]) != gpu_evidence_digest([b""])


def test_gpu_report_replayed_from_another_cvm_is_refused(amd_pki: AmdTestPki) -> None:
    """CVM B presents CVM A's GPU evidence with its own (genuine) SNP report: refused."""
    nonce, spki = b"\x01" * 32, b"requester-spki"
    gpu_a, gpu_b = [b"gpu evidence of A"], [b"gpu evidence of B"]
    report_b = amd_pki.report(
        SnpFields(report_data=expected_report_data(nonce, spki, gpu_evidence_digest(gpu_b)))
    )
    options = SnpOptions(AT, ark_override={"Milan": amd_pki.ark})

    def check(gpu: list[bytes]) -> str:
        expected = expected_report_data(nonce, spki, gpu_evidence_digest(gpu))
        options_with = SnpOptions(
            AT, expected_report_data=expected, ark_override=options.ark_override
        )
        return verify_snp(report_b, amd_pki.chain, options_with).step("report_data").status  # type: ignore[union-attr]

    assert check(gpu_b) == "pass"
    assert check(gpu_a) == "fail"


def test_evidence_json_round_trip(amd_pki: AmdTestPki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    report = amd_pki.report()
    obj = {
        "kind": "sev-snp",
        "report": base64.b64encode(report).decode(),
        "certificates": [
            base64.urlsafe_b64encode(amd_pki.vcek.public_bytes(Encoding.DER)).decode(),
            amd_pki.ask.public_bytes(Encoding.PEM).decode(),
        ],
    }
    decoded = cvm_evidence_from_json(obj)
    assert decoded.report == report and len(decoded.certificates) == 2


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"kind": "sgx"},
        {"kind": "tdx"},
        {"kind": "tdx", "quote": "not base64!"},
        {"kind": "tdx", "quote": "AAAA", "extra": 1},
        {"kind": "sev-snp", "report": "AAAA"},
        {"kind": "sev-snp", "report": "AAAA", "certificates": []},
        {"kind": "sev-snp", "report": "AAAA", "certificates": ["AAAA"]},
        {"kind": "sev-snp", "report": "AAAA", "certificates": [5]},
        {"kind": "sev-snp", "report": 5, "certificates": ["AAAA"]},
    ],
)
def test_malformed_evidence_json_is_a_clear_error(obj: dict[str, object]) -> None:
    with pytest.raises(CvmEvidenceError):
        cvm_evidence_from_json(obj)  # type: ignore[arg-type]
