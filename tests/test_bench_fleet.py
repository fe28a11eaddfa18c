"""The benchmark's synthetic fleet must stay a valid inventory (so the benchmark cannot rot)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from gpufence.audit import audit_snapshot
from gpufence.load.inventory import load_snapshot
from gpufence.model.findings import Status
from tests.conftest import REPO


def test_fleet_is_a_valid_inventory(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from fleet import fleet
    finally:
        sys.path.remove(str(REPO / "bench"))
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet(70), sort_keys=False))
    snapshot = load_snapshot(path)
    assert len(snapshot.nodes) == 70 and len(snapshot.bmcs) == 70
    findings = audit_snapshot(snapshot).findings
    assert not [f for f in findings if f.status is Status.ERROR]
