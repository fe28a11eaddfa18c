"""What a CVM's report data must be so that it binds a broker session to the GPU evidence.

``expected_report_data(nonce, requester_spki, gpu_evidence_digest)`` =
``SHA-512( "gpufence-cvm-binding/v1" || 0x00 || len32(nonce) || nonce || len32(spki) || spki ||
len32(digest) || digest )`` where ``len32`` is a 4-byte big-endian length. SHA-512 fills the 64
report-data bytes of both SEV-SNP (REPORT_DATA) and TDX (REPORTDATA). The label separates this
use from every other hash of the same inputs; the lengths make the concatenation unambiguous.

``gpu_evidence_digest(reports)`` = ``SHA-384( "gpufence-gpu-evidence/v1" || 0x00 ||
len32(count) || for each report in order: len32(report) || report )`` over the raw SPDM
request+response bytes of every device in the evidence set. The CVM commits to exactly the GPU
evidence it presents; evidence taken from another CVM carries another CVM's digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "BINDING_LABEL",
    "GPU_EVIDENCE_LABEL",
    "expected_report_data",
    "gpu_evidence_digest",
]

BINDING_LABEL = b"gpufence-cvm-binding/v1\x00"
GPU_EVIDENCE_LABEL = b"gpufence-gpu-evidence/v1\x00"


def _len32(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big")


def gpu_evidence_digest(reports: Sequence[bytes]) -> bytes:
    """SHA-384 over the GPU/NVSwitch reports, in order, length-prefixed (48 bytes)."""
    h = hashlib.sha384(GPU_EVIDENCE_LABEL)
    h.update(len(reports).to_bytes(4, "big"))
    for report in reports:
        h.update(_len32(report))
        h.update(report)
    return h.digest()


def expected_report_data(nonce: bytes, requester_spki: bytes, gpu_evidence_digest: bytes) -> bytes:
    """The 64 bytes a CVM must put in its report data for this nonce, key and GPU evidence."""
    h = hashlib.sha512(BINDING_LABEL)
    for part in (nonce, requester_spki, gpu_evidence_digest):
        h.update(_len32(part))
        h.update(part)
    return h.digest()
