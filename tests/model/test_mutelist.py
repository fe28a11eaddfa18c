"""Mutelist: reason and expiry required; muted findings stay visible; expired mutes mute nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from gpufence.cli import main
from gpufence.errors import InputError
from gpufence.load.mutelist import load_mutelist
from gpufence.model.findings import Finding, Plane, Severity, Status
from gpufence.model.mutelist import Mute, Mutelist, apply_mutes
from tests.inventories import base_inventory, write_inventory


def _finding(control: str, resource: str, status: Status = Status.FAIL) -> Finding:
    return Finding(
        control=control,
        title="A title for tests",
        plane=Plane.GPU,
        severity=Severity.HIGH,
        status=status,
        resource=resource,
        message="m",
        remediation="r",
    )


def _mute(control: str, resource: str, expires: str) -> Mute:
    return Mute(
        control=control,
        resource=resource,
        reason="accepted until the migration",
        expires=dt.date.fromisoformat(expires),
    )


def test_active_mute_mutes_fail_and_keeps_reason() -> None:
    lst = Mutelist(version=1, mutes=(_mute("GPU-*", "node/lab-*", "2026-12-31"),))
    out = apply_mutes(
        [
            _finding("GPU-001", "node/lab-1"),
            _finding("GPU-001", "node/prod-1"),
            _finding("GPU-002", "node/lab-2", Status.PASS),
        ],
        lst,
        dt.date(2026, 11, 25),
    )
    assert [f.status for f in out.findings] == [Status.MUTED, Status.FAIL, Status.PASS]
    assert out.findings[0].evidence["mute_reason"] == "accepted until the migration"
    assert out.findings[0].evidence["muted_status"] == "FAIL"
    assert out.unused == () and out.expired == ()


def test_expired_mute_mutes_nothing() -> None:
    lst = Mutelist(version=1, mutes=(_mute("GPU-001", "*", "2026-11-24"),))
    out = apply_mutes([_finding("GPU-001", "node/a")], lst, dt.date(2026, 11, 25))
    assert out.findings[0].status is Status.FAIL
    assert len(out.expired) == 1


def test_unused_mute_is_reported() -> None:
    lst = Mutelist(version=1, mutes=(_mute("OOB-001", "*", "2027-01-01"),))
    out = apply_mutes([_finding("GPU-001", "node/a")], lst, dt.date(2026, 11, 25))
    assert len(out.unused) == 1


def test_mutelist_file_errors_have_locations(tmp_path: Path) -> None:
    path = tmp_path / "mutes.yaml"
    path.write_text(
        "version: 1\nmutes:\n  - control: GPU-001\n    reason: short\n    expires: 2027-01-01\n"
    )
    with pytest.raises(InputError) as info:
        load_mutelist(path)
    assert info.value.location is not None and info.value.location.line == 4


def test_cli_mutelist_turns_a_failing_audit_green(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = base_inventory()
    data["storage"][0]["encrypted_at_rest"] = False
    inventory = write_inventory(tmp_path, data)
    mutes = tmp_path / "mutes.yaml"
    mutes.write_text(
        "version: 1\nmutes:\n"
        "  - {control: DAT-001, resource: storage/weights, reason: re-encryption scheduled Q1,"
        " expires: 2999-01-01}\n"
        "  - {control: OOB-001, reason: stale entry that matches nothing, expires: 2999-01-01}\n"
    )
    assert main(["audit", str(inventory), "--mutelist", str(mutes), "-f", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    muted = [f for f in doc["findings"] if f["status"] == "MUTED"]
    assert [f["control"] for f in muted] == ["DAT-001"]
    assert "matched no finding" in captured.err
