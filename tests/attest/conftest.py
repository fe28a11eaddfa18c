"""Paths into ../shared/data/attestation and the frozen clock its README prescribes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

FROZEN = datetime(2026, 11, 25, tzinfo=UTC)
"""The data README's clock: every validity statement in it holds at this time."""
RIM_ERA = datetime(2024, 6, 1, tzinfo=UTC)
"""Inside the validity of the GH100 VBIOS RIM signer (expired 2025-06)."""
SAMPLE_NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")


@pytest.fixture
def att(shared_dir: Path) -> Path:
    return shared_dir / "data" / "attestation"


@pytest.fixture
def unit(att: Path) -> Path:
    return att / "nvidia-attestation-sdk" / "unit-tests-testdata"
