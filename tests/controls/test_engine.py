"""Control metadata is validated when a control is defined; the registry is consistent."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gpufence.controls import ALL_CONTROLS
from gpufence.controls.engine import ControlMeta
from gpufence.model.findings import Plane, Severity, fingerprint_of

GOOD: dict[str, Any] = {
    "id": "GPU-099",
    "title": "Something concrete is wrong",
    "plane": Plane.GPU,
    "severity": Severity.HIGH,
    "failure_mode": "A real sentence about the harm this prevents.",
    "remediation": "A real sentence about how to fix the problem.",
    "references": ("https://example.org/doc",),
}


def test_good_metadata() -> None:
    assert ControlMeta(**GOOD).id == "GPU-099"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "GPU-1"),
        ("id", "NET-001"),
        ("id", "CC-001"),  # prefix does not match plane GPU
        ("title", "Ensure GPUs are isolated"),
        ("title", "Too short"),
        ("title", "Ends with a period."),
        ("failure_mode", "bad"),
        ("references", ()),
        ("references", ("http://insecure.example",)),
    ],
)
def test_bad_metadata_is_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        ControlMeta(**{**GOOD, field: value})


def test_registry_ids_unique_and_ordered_by_plane() -> None:
    ids = [c.id for c in ALL_CONTROLS]
    assert len(ids) == len(set(ids))
    planes = list(Plane)
    order = [planes.index(c.meta.plane) for c in ALL_CONTROLS]
    assert order == sorted(order)


def test_fingerprint_is_stable_and_distinct() -> None:
    assert fingerprint_of("GPU-001", "node/a") == fingerprint_of("GPU-001", "node/a")
    assert fingerprint_of("GPU-001", "node/a") != fingerprint_of("GPU-001", "node/b")
    assert fingerprint_of("GPU-001", "node/a") != fingerprint_of("GPU-002", "node/a")
    # Pinned: a change here breaks every user's baseline and must be deliberate.
    assert fingerprint_of("GPU-001", "node/a") == "77cf75f46da373c9b81a8c8fb088cd22"
