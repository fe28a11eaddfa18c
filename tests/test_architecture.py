"""The architecture holds: import contracts, one evidence constructor, registries complete."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from gpufence.collect import collectors
from gpufence.model.evidence import CollectorName

SRC = Path(__file__).resolve().parents[1] / "src" / "gpufence"


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], capture_output=True, text=True, cwd=SRC.parents[1], check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_evidence_documents_are_built_by_the_one_constructor() -> None:
    """Nobody outside model/evidence.py calls EvidenceDocument(...) or writes the schema id."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "evidence.py" and path.parent.name == "model":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "EvidenceDocument":
                offenders.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.Constant) and node.value == "gpufence.evidence/v1":
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def test_every_live_collector_is_registered() -> None:
    """Every CollectorName but the loaders' is declared by exactly one module of collect/."""
    found = collectors()
    registered = [c.name for c in found]
    loaders = {CollectorName.PARTITIONS_CONF, CollectorName.BROKER_CONFIG}
    assert len(registered) == len(set(registered))
    assert set(registered) | loaders == set(CollectorName)
    assert not set(registered) & loaders
    for info in found:
        assert info.module.startswith("gpufence.collect."), info


def test_every_collector_writes_subjects_whose_plane_is_known() -> None:
    """The evidence-age gauge finds each collector's plane from the kind of its subjects."""
    from gpufence.store.metrics import evidence_plane

    for info in collectors():
        assert evidence_plane(info.name, info.subjects) is not None, info
