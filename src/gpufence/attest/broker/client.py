"""The requester's side of the broker protocol (used by tests, the benchmark and integrators).

The requester makes an ephemeral P-384 key, asks for a challenge, has its GPUs sign
``binding_nonce(challenge, its key)``, posts the evidence, and opens the released secret with
its private key. Nothing here trusts the broker's answers beyond what HPKE authenticates.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gpufence.attest.broker.crypto import b64d, binding_nonce, hpke_open, spki_der
from gpufence.attest.cvm.binding import expected_report_data, gpu_evidence_digest

__all__ = ["Requester"]


@dataclass
class Requester:
    """A workload's side of key release: an ephemeral key pair that opens sealed secrets."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )

    @property
    def public_pem(self) -> str:
        """The public key as PEM, sent with the attestation request."""
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def gpu_nonce(self, challenge_nonce_b64: str) -> bytes:
        """What the GPUs must sign for this challenge and this key."""
        return binding_nonce(b64d(challenge_nonce_b64), spki_der(self.key.public_key()))

    def cvm_report_data(self, challenge_nonce_b64: str, evidence: list[dict[str, str]]) -> bytes:
        """What this requester's CVM must put in its SNP/TDX report data for this request.

        Binds the broker nonce, this key and the GPU evidence it will send (the ``evidence``
        list of NVIDIA serialized objects, in order).
        """
        reports = [base64.b64decode(item["evidence"]) for item in evidence]
        spki = spki_der(self.key.public_key())
        return expected_report_data(b64d(challenge_nonce_b64), spki, gpu_evidence_digest(reports))

    def open(self, release: dict[str, object]) -> bytes:
        """Open a released secret (HPKE-sealed to this requester's key)."""
        return hpke_open(b64d(str(release["ciphertext"])), self.key, str(release["info"]).encode())
