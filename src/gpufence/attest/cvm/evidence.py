"""CPU TEE evidence as a JSON object (the ``cvm`` member of a broker /attest request).

``{"kind": "sev-snp", "report": base64, "certificates": [base64 DER or PEM text, ...]}`` (the
VCEK and its ASK; an ARK sent along must be the pinned one) or ``{"kind": "tdx", "quote":
base64}`` (the PCK chain travels in the quote). Standard or URL-safe base64. Anything else is a
:class:`CvmEvidenceError` with a reason, for a 4xx answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from pydantic import JsonValue

from gpufence.attest.cvm._certs import malformed_certificate
from gpufence.attest.cvm.result import CvmKind

__all__ = ["MAX_CVM_EVIDENCE", "CvmEvidence", "CvmEvidenceError", "cvm_evidence_from_json"]

MAX_CVM_EVIDENCE = 64 * 1024
MAX_CERTIFICATES = 4


class CvmEvidenceError(ValueError):
    """The ``cvm`` object is not readable evidence (the message says what is wrong)."""


@dataclass(frozen=True)
class CvmEvidence:
    """Decoded CPU TEE evidence (nothing verified yet)."""

    kind: CvmKind
    report: bytes
    certificates: tuple[x509.Certificate, ...] = ()


def _b64(value: JsonValue, what: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 2 * MAX_CVM_EVIDENCE:
        raise CvmEvidenceError(f"{what} must be a non-empty base64 string")
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CvmEvidenceError(f"{what} is not base64") from None


def _certificate(value: JsonValue, position: int) -> x509.Certificate:
    where = f"cvm.certificates[{position}]"
    try:
        if isinstance(value, str) and "-----BEGIN CERTIFICATE-----" in value:
            return x509.load_pem_x509_certificate(value.encode("ascii"))
        return x509.load_der_x509_certificate(_b64(value, where))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CvmEvidenceError(f"{where} is not a certificate: {exc}") from exc


def cvm_evidence_from_json(obj: Mapping[str, JsonValue]) -> CvmEvidence:
    """Decode the ``cvm`` object; CvmEvidenceError names the member that is wrong."""
    kind = obj.get("kind")
    if kind == "sev-snp":
        certs_json = obj.get("certificates")
        if not isinstance(certs_json, list) or not 1 <= len(certs_json) <= MAX_CERTIFICATES:
            raise CvmEvidenceError(
                f"cvm.certificates must list 1..{MAX_CERTIFICATES} certificates (VCEK, ASK)"
            )
        certs = tuple(_certificate(c, i) for i, c in enumerate(certs_json))
        problem = malformed_certificate(certs)
        if problem is not None:
            raise CvmEvidenceError(f"cvm.certificates: {problem}")
        unknown = set(obj) - {"kind", "report", "certificates"}
        if unknown:
            raise CvmEvidenceError(f"cvm has unknown members {sorted(unknown)}")
        return CvmEvidence("sev-snp", _b64(obj.get("report"), "cvm.report"), certs)
    if kind == "tdx":
        unknown = set(obj) - {"kind", "quote"}
        if unknown:
            raise CvmEvidenceError(f"cvm has unknown members {sorted(unknown)}")
        return CvmEvidence("tdx", _b64(obj.get("quote"), "cvm.quote"))
    raise CvmEvidenceError(f"cvm.kind must be 'sev-snp' or 'tdx', not {kind!r}")
