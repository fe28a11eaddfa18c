"""Shared test helpers: the shared data folder and small inventory builders."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL (``postgresql+psycopg://``) of a real PostgreSQL server started for this test session
    (per xdist worker); skips locally without Debian's postgresql, fails under CI=true."""
    from tests.postgres_server import postgres_url

    with postgres_url() as url:
        yield url
