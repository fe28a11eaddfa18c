"""FindingTable: compact storage behind ``AuditResult.findings`` that reads back equal findings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence._yaml import position_of
from gpufence.controls import audit_snapshot
from gpufence.load.inventory import load_snapshot
from gpufence.model.findings import (
    AuditResult,
    Finding,
    FindingLocation,
    FindingTable,
    Plane,
    Severity,
    Status,
    rows_of,
    summarize,
)
from gpufence.model.mutelist import Mute, Mutelist, apply_mutes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "neocloud" / "inventory.yaml"

_text = st.text(max_size=12)
_findings = st.builds(
    Finding,
    control=st.sampled_from(["GPU-001", "OOB-002", "CC-003"]),
    title=st.sampled_from(["Tenants share a GPU", "BMC reachable from tenants"]),
    plane=st.sampled_from(list(Plane)),
    severity=st.sampled_from(list(Severity)),
    status=st.sampled_from(list(Status)),
    resource=_text,
    message=_text,
    evidence=st.dictionaries(_text, st.one_of(st.integers(), st.booleans(), _text), max_size=3),
    remediation=st.sampled_from(["Give each tenant whole GPUs.", "Move the BMC network."]),
    references=st.sampled_from([(), ("https://example.org/a",)]),
    location=st.one_of(
        st.none(),
        st.builds(
            FindingLocation,
            file=_text,
            line=st.one_of(st.none(), st.integers(1, 10**6)),
            column=st.one_of(st.none(), st.integers(1, 500)),
        ),
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_findings, max_size=12))
def test_table_reads_back_what_was_put_in(findings: list[Finding]) -> None:
    table = FindingTable(findings)
    assert len(table) == len(findings)
    assert table == tuple(findings)
    assert list(table) == findings
    assert [table[i] for i in range(-len(findings), 0)] == findings
    assert [f.model_dump(mode="json") for f in table] == [
        f.model_dump(mode="json") for f in findings
    ]
    assert list(rows_of(table)) == list(rows_of(findings))
    assert table[1:3] == findings[1:3]
    order = list(reversed(range(len(findings))))
    assert list(table.reordered(order)) == [findings[i] for i in order]
    copied = FindingTable()
    copied.extend_rows(table.reordered(order), range(len(order)))
    assert list(copied) == [findings[i] for i in order]
    for fail_on in (None, Severity.HIGH, Severity.INFO):
        assert summarize(table, fail_on) == summarize(findings, fail_on)


def test_declared_at_is_read_as_a_location_in_the_table_file() -> None:
    table = FindingTable(source_file="inv.yaml")
    parts = {
        "control": "GPU-001",
        "title": "Tenants share a GPU",
        "plane": Plane.GPU,
        "severity": Severity.HIGH,
        "status": Status.FAIL,
        "resource": "node/a",
        "message": "shared",
        "evidence": {},
        "remediation": "Give each tenant whole GPUs.",
        "references": (),
    }
    table.add(**parts, declared_at=position_of(12, 7))  # type: ignore[arg-type]
    assert table[0].location == FindingLocation(file="inv.yaml", line=12, column=7)
    # Rows copied into a table of another file keep their own file.
    other = FindingTable(source_file="other.yaml")
    other.extend_rows(table, [0])
    assert other[0].location == FindingLocation(file="inv.yaml", line=12, column=7)
    with pytest.raises(TypeError):
        FindingTable().add(**parts, declared_at=position_of(1, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        table.reordered([0]).append(table[0])


def test_audit_result_keeps_a_table_and_serialises_it_as_the_tuple() -> None:
    result = audit_snapshot(load_snapshot(EXAMPLE))
    assert isinstance(result.findings, FindingTable)
    as_tuple = AuditResult(
        findings=tuple(result.findings),
        controls=result.controls,
        inputs=result.inputs,
        tool_version=result.tool_version,
    )
    assert isinstance(as_tuple.findings, tuple)
    assert json.loads(result.model_dump_json()) == json.loads(as_tuple.model_dump_json())
    assert result.model_dump() == as_tuple.model_dump()
    copied = result.model_copy(update={"findings": list(result.findings)})
    assert copied.findings == result.findings


def test_mutes_on_a_table_match_mutes_on_the_tuple() -> None:
    result = audit_snapshot(load_snapshot(EXAMPLE))
    mutelist = Mutelist(
        version=1,
        mutes=(
            Mute(
                control="*",
                resource="node/*",
                reason="accepted while migrating (CHG-1)",
                expires=dt.date(2099, 1, 1),
            ),
        ),
    )
    today = dt.date(2026, 12, 4)
    on_table = apply_mutes(result.findings, mutelist, today)
    on_tuple = apply_mutes(tuple(result.findings), mutelist, today)
    assert on_table.findings == tuple(on_tuple.findings)
    assert any(f.status is Status.MUTED for f in on_table.findings)
    assert on_table.unused == on_tuple.unused == ()


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
# What must stay a dict: JSON would hand back another type or value (or fail).
_not_json = st.one_of(
    st.tuples(st.integers()),
    st.sampled_from([Status.FAIL, Severity.HIGH, float("nan"), float("inf"), b"x", {1, 2}]),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
    st.dates(),
)


def _same_types(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)  # type: ignore[attr-defined]
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b or (a != a and b != b)  # nan equals itself here


def _plain_json(value: dict[str, object]) -> bool:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return _same_types(json.loads(text), value)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.text(max_size=6), _json, max_size=4),
            st.dictionaries(
                st.text(max_size=6), st.one_of(_json, _not_json), min_size=1, max_size=4
            ),
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_compacted_evidence_reads_back_equal_and_of_the_same_types(
    evidences: list[dict[str, object]], data: st.DataObject
) -> None:
    findings = [
        Finding.from_parts(
            control="OOB-002",
            title="BMC reachable from tenants",
            plane=Plane.OOB,
            severity=Severity.HIGH,
            status=Status.FAIL,
            resource=f"bmc/b{i}",
            message="m",
            evidence=evidence,
            remediation="Move the BMC network.",
            references=(),
        )
        for i, evidence in enumerate(evidences)
    ]
    table = FindingTable(findings)
    start = data.draw(st.integers(0, len(findings)))
    table.compact_evidence(start)
    stored = table._columns.evidence
    for i, (finding, kept) in enumerate(zip(findings, stored, strict=True)):
        assert _same_types(table[i].evidence, finding.evidence)
        assert dict(next(iter(table[i : i + 1].rows()))[6]) == finding.evidence
        if i < start:
            assert kept is finding.evidence
        elif _plain_json(finding.evidence):
            assert isinstance(kept, str)
        else:
            assert kept is finding.evidence  # JSON would give back another type or value
    assert table == tuple(findings)
    assert list(rows_of(table)) == list(rows_of(findings))
    for fail_on in (None, Severity.HIGH):
        assert summarize(table, fail_on) == summarize(findings, fail_on)


def test_json_evidence_is_kept_as_text_and_shared_evidence_once() -> None:
    shared = {"tls": {"value": ["TLSv1.0"], "source": "observed: scan.jsonl"}}
    findings = [
        Finding.from_parts(
            control="OOB-006",
            title="BMC accepts TLS 1.0 or 1.1",
            plane=Plane.OOB,
            severity=Severity.MEDIUM,
            status=Status.FAIL,
            resource=f"bmc/b{i}",
            message="accepts TLS 1.0",
            evidence=evidence,
            remediation="Allow TLS 1.2 and 1.3 only.",
            references=(),
        )
        for i, evidence in enumerate([shared, shared, {"versions": ("TLSv1.0",)}])
    ]
    table = FindingTable(findings)
    table.compact_evidence()
    first, second, third = table._columns.evidence
    assert isinstance(first, str) and first is second
    assert third == {"versions": ("TLSv1.0",)}  # a tuple would come back a list: kept as is
    assert table[2].evidence["versions"] == ("TLSv1.0",)
    with pytest.raises(TypeError):
        table.reordered([0]).compact_evidence()


def test_a_dumped_result_validates_back_to_an_equal_result() -> None:
    result = audit_snapshot(load_snapshot(EXAMPLE))
    dumped = result.model_dump(mode="json")
    assert AuditResult.model_validate(dumped) == result
    assert AuditResult.model_validate_json(result.model_dump_json()) == result
    first = dumped["findings"][0]
    with pytest.raises(ValueError, match="is not that of"):
        Finding.model_validate({**first, "fingerprint": "0" * 32})
    with pytest.raises(ValueError, match="is not that of"):
        Finding.model_validate({**first, "resource": "node/elsewhere"})
