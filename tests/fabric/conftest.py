"""Shared paths for the fabric tests (data lives in ../shared, never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def examples(shared_dir: Path) -> Path:
    return shared_dir / "data" / "fabric" / "examples"


@pytest.fixture
def fixtures(shared_dir: Path) -> Path:
    return shared_dir / "data" / "fabric" / "fixtures"
