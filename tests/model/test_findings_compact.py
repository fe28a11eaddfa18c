"""Findings built on the audit's hot path equal validated ones, and share what they may."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.controls.engine import Outcome, SharedEvidence, finding_from
from gpufence.model.findings import Finding, FindingLocation, Plane, Severity, Status

_PARTS: dict[str, Any] = {
    "control": "GPU-001",
    "title": "A control title of some length",
    "plane": Plane.GPU,
    "severity": Severity.HIGH,
    "status": Status.FAIL,
    "resource": "node/n1",
    "message": "ecc is off",
    "evidence": {"ecc": {"value": False, "source": "declared"}},
    "remediation": "Turn ECC on for every GPU of the node.",
    "references": ("https://example.org/ecc",),
}


def test_from_parts_equals_validated_finding() -> None:
    location = FindingLocation.at("inv.yaml", 3, 5)
    built = Finding.from_parts(**_PARTS, location=location)
    validated = Finding(**_PARTS, location=FindingLocation(file="inv.yaml", line=3, column=5))
    assert built == validated
    assert built.model_dump(mode="json") == validated.model_dump(mode="json")
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set


def test_model_copy_does_not_change_the_shared_field_set() -> None:
    a = Finding.from_parts(**_PARTS)
    b = Finding.from_parts(**{**_PARTS, "resource": "node/n2"})
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    shared = set(a.__pydantic_fields_set__)
    copied = a.model_copy(update={"status": Status.MUTED})
    assert copied.status is Status.MUTED and a.status is Status.FAIL
    assert a.__pydantic_fields_set__ == shared
    with pytest.raises(Exception, match="frozen"):
        a.status = Status.PASS  # type: ignore[misc]


def test_from_parts_refuses_plain_strings_for_enums() -> None:
    # Validation would coerce "FAIL" to Status.FAIL; the fast path must not let a str through,
    # or `finding.status is Status.FAIL` would silently be False.
    with pytest.raises(TypeError, match="enum"):
        Finding.from_parts(**{**_PARTS, "status": "FAIL"})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(a=st.dictionaries(st.text(max_size=3), _JSON, max_size=3), b=_JSON)
def test_shared_evidence_only_merges_values_that_render_the_same(a: dict[str, Any], b: Any) -> None:
    shared = SharedEvidence()
    first = shared.get(dict(a))
    other = {"x": b} if not isinstance(b, dict) else b
    second = shared.get(dict(other))
    if second is first:
        # Same text in every report format, key order included.
        assert json.dumps(first) == json.dumps(other)
    else:
        assert second == other


def test_shared_evidence_keeps_true_and_one_apart() -> None:
    shared = SharedEvidence()
    assert shared.get({"v": True}) is not shared.get({"v": 1})
    assert shared.get({"v": 0.0}) is not shared.get({"v": -0.0})
    assert shared.get({"v": [1]}) is not shared.get({"v": (1,)})
    one = {"v": {"value": False, "source": "declared"}}
    assert shared.get(dict(one)) is shared.get(dict(one))


def test_finding_from_matches_the_validated_construction() -> None:
    from gpufence.controls import ALL_CONTROLS

    meta = next(iter(ALL_CONTROLS)).meta
    outcome = Outcome(Status.NOT_EVALUATED, "node/n1", "ecc is unknown", {"missing": "ecc"})
    built = finding_from(meta, outcome, None, SharedEvidence())
    validated = Finding(
        control=meta.id,
        title=meta.title,
        plane=meta.plane,
        severity=meta.severity,
        status=outcome.status,
        resource=outcome.resource,
        message=outcome.message,
        evidence=dict(outcome.evidence),
        remediation=meta.remediation,
        references=meta.references,
    )
    assert built == validated
