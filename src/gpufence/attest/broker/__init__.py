"""The attestation-gated key broker: challenge, attest, release (see ``service``)."""

from __future__ import annotations
