"""Shared test helpers: the shared data folder and small inventory builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout; skip (or fail under CI=true) when absent."""
    if not SHARED.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing; CI must have ../shared beside the clone")
        pytest.skip(f"{SHARED} not present (reference data lives beside the checkout)")
    return SHARED
