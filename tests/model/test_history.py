"""Diffs between runs by fingerprint, baselines, and fingerprints that survive unrelated edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from gpufence.audit import audit
from gpufence.model.findings import Plane, Severity, Status, fingerprint_of
from gpufence.model.history import (
    ChangeKind,
    FindingState,
    diff_findings,
    new_relative_to,
    state_of,
    states_of,
)
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "neocloud"


def _s(resource: str, status: Status, sev: Severity = Severity.HIGH) -> FindingState:
    return FindingState(
        fingerprint=fingerprint_of("GPU-001", resource),
        control="GPU-001",
        plane=Plane.GPU,
        severity=sev,
        status=status,
        resource=resource,
    )


def test_diff_classifies_every_transition() -> None:
    before = [
        _s("gone-fail", Status.FAIL),
        _s("fixed", Status.FAIL),
        _s("regressed", Status.PASS),
        _s("muted-now", Status.FAIL),
        _s("same", Status.FAIL),
        _s("worse", Status.FAIL, Severity.MEDIUM),
        _s("ne-to-fail", Status.NOT_EVALUATED),
        _s("pass-pass", Status.PASS),
    ]
    after = [
        _s("fixed", Status.PASS),
        _s("regressed", Status.FAIL),
        _s("brand-new", Status.NOT_EVALUATED),
        _s("muted-now", Status.MUTED),
        _s("same", Status.FAIL),
        _s("worse", Status.FAIL, Severity.CRITICAL),
        _s("ne-to-fail", Status.FAIL),
        _s("pass-pass", Status.PASS),
    ]
    diff = diff_findings(before, after, base="a", head="b")
    kinds = {c.resource: c.kind for c in diff.changes}
    assert kinds == {
        "gone-fail": ChangeKind.FIXED,
        "fixed": ChangeKind.FIXED,
        "muted-now": ChangeKind.FIXED,
        "regressed": ChangeKind.NEW,
        "brand-new": ChangeKind.NEW,
        "same": ChangeKind.STILL_OPEN,
        "worse": ChangeKind.CHANGED,
        "ne-to-fail": ChangeKind.CHANGED,
    }
    gone = next(c for c in diff.changes if c.resource == "gone-fail")
    assert gone.after is None and gone.before is not None
    # Ordered by kind: new first.
    assert [c.kind for c in diff.changes][:2] == [ChangeKind.NEW, ChangeKind.NEW]


def test_baseline_keeps_only_news() -> None:
    run = audit(EXAMPLE / "inventory.yaml", [EXAMPLE / "evidence"])
    states = [state_of(f) for f in run.result.findings]
    kept, dropped = new_relative_to(run.result.findings, states)
    assert kept == [] and dropped == len(states)
    # One finding had another status in the baseline: it is news and stays.
    target = next(f for f in run.result.findings if f.status is Status.FAIL)
    changed = [
        s.model_copy(update={"status": Status.PASS}) if s.fingerprint == target.fingerprint else s
        for s in states
    ]
    kept, dropped = new_relative_to(run.result.findings, changed)
    assert kept == [target] and dropped == len(states) - 1


def test_states_of_a_table_are_the_states_of_its_findings() -> None:
    findings = audit(EXAMPLE / "inventory.yaml", [EXAMPLE / "evidence"]).result.findings
    states = states_of(findings)
    expected = [state_of(f) for f in findings]
    assert list(states) == expected and len(states) == len(expected)
    assert [states[i] for i in (0, -1, 5)] == [expected[i] for i in (0, -1, 5)]
    assert list(states[3:9]) == expected[3:9]


def _fingerprints(inventory: Path) -> dict[str, Status]:
    run = audit(inventory, [inventory.parent / "evidence"])
    return {f.fingerprint: f.status for f in run.result.findings}


def test_fingerprints_stable_when_unrelated_inventory_parts_change(tmp_path: Path) -> None:
    before = _fingerprints(EXAMPLE / "inventory.yaml")
    copy = tmp_path / "neocloud"
    shutil.copytree(EXAMPLE, copy)
    data = yaml.safe_load((copy / "inventory.yaml").read_text())
    # Unrelated edits: lists reordered, a description changed, an unused site added.
    data["tenants"].reverse()
    data["node_pools"].reverse()
    data["bmcs"].reverse()
    data["tenants"][0]["description"] = "edited"
    data["sites"].append({"name": "zzz9", "country": "DE", "ownership": "owned"})
    (copy / "inventory.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    after = _fingerprints(copy / "inventory.yaml")
    assert after == before
    assert len(before) > 100


def test_fingerprint_changes_with_the_resource(tmp_path: Path) -> None:
    copy = tmp_path / "neocloud"
    shutil.copytree(EXAMPLE, copy)
    text = (copy / "inventory.yaml").read_text()
    (copy / "inventory.yaml").write_text(text.replace("rtx-l01-bmc", "rtx-l09-bmc"))
    before, after = (
        _fingerprints(EXAMPLE / "inventory.yaml"),
        _fingerprints(copy / "inventory.yaml"),
    )
    assert fingerprint_of("OOB-003", "bmc/rtx-l01-bmc") in before
    assert fingerprint_of("OOB-003", "bmc/rtx-l01-bmc") not in after
    assert after[fingerprint_of("OOB-003", "bmc/rtx-l09-bmc")] is Status.FAIL
