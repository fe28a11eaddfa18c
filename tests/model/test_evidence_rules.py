"""The evidence rules of docs/evidence.md, end to end through `gpufence audit` (CC-001 as witness).

Each test reproduces one way evidence that should not count used to count (issue 11): CC-001
PASSed from the declared `cc_mode: on` although the evidence said otherwise or nothing usable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gpufence.cli import main
from gpufence.errors import InputError
from gpufence.load.inventory import load_snapshot
from gpufence.model.evidence import EvidenceDocument
from tests.inventories import base_inventory, write_inventory

NOW = datetime.now(UTC)


def _cc_inventory(tmp_path: Path) -> Path:
    """A confidential tenant on rented capacity, declared with CC on: CC-001 PASSes on that."""
    data = base_inventory()
    data["sites"][0]["ownership"] = "rented"
    data["tenants"][0]["data_sensitivity"] = "confidential"
    data["node_pools"][0]["gpu_state"]["cc_mode"] = "on"
    return write_inventory(tmp_path, data)


def _doc(
    subject: str = "node/n1",
    observed: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
    not_observed: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "schema": "gpufence.evidence/v1",
        "subject": subject,
        "collector": "nvml",
        "collected_at": (at or NOW - timedelta(hours=1)).isoformat(),
        "observed": {"gpu_state.cc_mode": "on"} if observed is None else observed,
        "not_observed": not_observed or [],
    }


def _audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], docs: dict[str, Any], *args: str
) -> tuple[int, dict[str, Any], str]:
    evidence = tmp_path / "evidence"
    evidence.mkdir(exist_ok=True)
    for name, doc in docs.items():
        (evidence / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    code = main(["audit", str(_cc_inventory(tmp_path)), "-e", str(evidence), "-f", "json", *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out else {}), captured.err


def _cc001(report: dict[str, Any]) -> dict[str, Any]:
    (finding,) = [f for f in report["findings"] if f["control"] == "CC-001"]
    return finding


def test_witness_passes_on_good_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report, _ = _audit(tmp_path, capsys, {"a.json": _doc()})
    assert _cc001(report)["status"] == "PASS"


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps(
            {**_doc(observed={"gpu_state.cc_mode": "off"}), "schema": "gpufence.evidence/v999"}
        ),
    ],
)
def test_bad_evidence_is_exit_2_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    code, report, err = _audit(tmp_path, capsys, {"bad.json": content})
    assert code == 2 and report == {} and "bad.json" in err


def test_skipped_bad_evidence_is_an_error_finding_and_never_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {**_doc(observed={"gpu_state.cc_mode": "off"}), "schema": "gpufence.evidence/v999"}
    code, report, _ = _audit(tmp_path, capsys, {"bad.json": bad}, "--skip-bad-evidence")
    (error,) = [f for f in report["findings"] if f["status"] == "ERROR"]
    assert error["resource"] == "node/n1" and "v999" in error["message"]
    assert report["summary"]["verdict"] != "pass" and code == 0  # INCOMPLETE, not a bug (3)


def test_future_evidence_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = {
        "future.json": _doc(at=datetime(2099, 1, 1, tzinfo=UTC)),
        "real.json": _doc(observed={"gpu_state.cc_mode": "off"}),
    }
    code, _, err = _audit(tmp_path, capsys, docs)
    assert code == 2 and "future.json" in err and "in the future" in err


def test_stale_evidence_makes_the_fact_unknown_with_its_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _doc(at=datetime(1970, 1, 1, tzinfo=UTC))
    _, report, _ = _audit(tmp_path, capsys, {"old.json": old})
    finding = _cc001(report)
    assert finding["status"] == "NOT_EVALUATED"
    assert "old.json" in finding["message"] and "days old" in finding["message"]
    # A wider limit makes the same evidence current again.
    (tmp_path / "evidence" / "old.json").unlink()
    ten_days = _doc(at=NOW - timedelta(days=10))
    _, report, _ = _audit(tmp_path, capsys, {"ten.json": ten_days})
    assert _cc001(report)["status"] == "NOT_EVALUATED"
    _, report, _ = _audit(tmp_path, capsys, {}, "--max-evidence-age", "node=14d")
    assert _cc001(report)["status"] == "PASS"


def test_same_time_contradiction_is_not_evaluated_naming_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    when = NOW - timedelta(hours=2)
    docs = {
        "a.json": _doc(at=when),
        "b.json": _doc(observed={"gpu_state.cc_mode": "off"}, at=when),
    }
    _, report, _ = _audit(tmp_path, capsys, docs)
    message = _cc001(report)["message"]
    assert _cc001(report)["status"] == "NOT_EVALUATED"
    assert "contradictory" in message and "a.json" in message and "b.json" in message
    # A newer observation settles it.
    (tmp_path / "evidence" / "c.json").write_text(json.dumps(_doc()))
    _, report, _ = _audit(tmp_path, capsys, {})
    assert _cc001(report)["status"] == "PASS"


def test_not_observed_beats_the_declared_value_for_a_must_observe_fact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc(
        observed={},
        not_observed=[{"fact": "gpu_state.cc_mode", "reason": "NVML_ERROR_NO_PERMISSION"}],
    )
    _, report, _ = _audit(tmp_path, capsys, {"a.json": doc})
    finding = _cc001(report)
    assert finding["status"] == "NOT_EVALUATED"
    assert "NVML_ERROR_NO_PERMISSION" in finding["message"] and "declares" in finding["message"]


def test_not_observed_keeps_the_declared_value_for_other_facts(tmp_path: Path) -> None:
    doc = EvidenceDocument.model_validate(
        _doc(observed={}, not_observed=[{"fact": "gpu_state.vgpu", "reason": "unsupported"}])
    )
    data = base_inventory()
    data["node_pools"][0]["gpu_state"]["vgpu"] = False
    snap = load_snapshot(write_inventory(tmp_path, data), [(doc, "a.json")])
    assert snap.nodes[0].gpu_fact("vgpu").source == "declared"


@pytest.mark.parametrize(
    ("subject", "observed", "fragment"),
    [
        ("node/n2", {"gpu_state.ecc": True}, "did you mean 'node/n1'"),
        ("node/N1", {"gpu_state.ecc": True}, "case-sensitive: the inventory has 'node/n1'"),
        ("bmc/n1-bmc", {"gpu_state.cc_mode": "off"}, "belongs to a node/... subject"),
        ("node/n1", {"bmc.vendor": "HPE"}, "not a node fact"),
    ],
)
def test_evidence_for_an_unknown_subject_or_of_the_wrong_kind_is_an_input_error(
    tmp_path: Path, subject: str, observed: dict[str, Any], fragment: str
) -> None:
    doc = EvidenceDocument.model_validate(_doc(subject, observed))
    with pytest.raises(InputError) as caught:
        load_snapshot(write_inventory(tmp_path, base_inventory()), [(doc, "ev.json")])
    assert fragment in caught.value.diagnostics() and "ev.json" in caught.value.diagnostics()


def test_unknown_subject_exits_2_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _audit(tmp_path, capsys, {"a.json": _doc("node/N1")})
    assert code == 2 and "a.json" in err and "node/n1" in err
