"""Attestation: verify NVIDIA GPU/NVSwitch evidence offline and gate secrets on the verdict.

``spdm`` parses the signed measurement exchange, ``certs`` checks chains to the pinned roots,
``rim`` checks reference manifests, ``ocsp`` revocation, ``verify`` runs the named steps and
``claims`` renders NVIDIA's v3 claims; ``policy`` decides; ``broker`` releases keys.
"""

from __future__ import annotations
