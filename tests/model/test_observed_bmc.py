"""The typed BMC scan facts: one reader for the controls and the scanner; wrong shapes never judged.

A value of the wrong shape must leave its fact unknown with a reason (NOT_EVALUATED), never raise
(ERROR) and never PASS on a misread value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from gpufence.collect.bmc.observations import Observations
from gpufence.model.findings import Status
from gpufence.model.observed_bmc import BMC_FACTS, ObservedBmc
from tests.collect.bmc.test_controls_bmc import CASES, SCAN_CONTROLS, doc, one, run

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def test_every_case_of_the_control_tests_reads_without_problems() -> None:
    for _control, facts, _status, _words in CASES:
        observed = doc(**facts).observed
        reading = ObservedBmc.read(observed)
        assert reading.unreadable == {}, facts
        assert reading.facts.model_fields_set == {
            name for name, info in ObservedBmc.model_fields.items() if info.alias in observed
        }


def test_wrong_shapes_are_named_with_where_and_why() -> None:
    reading = ObservedBmc.read(
        {
            "bmc.accounts": [{"username": 7, "role": "Administrator"}],
            "bmc.session.timeout_s": "1800",  # a string is not a number of seconds
            "bmc.account.lockout_threshold": True,  # a flag is not a count
            "bmc.vendor": "HPE",
            "k8s.not_a_bmc_fact": 1,
        }
    )
    assert reading.facts.vendor == "HPE"
    assert reading.facts.accounts is None and reading.facts.session_timeout_s is None
    assert reading.facts.lockout_threshold is None
    assert reading.unreadable["bmc.accounts"].startswith("0.username: ")
    assert set(reading.unreadable) == {
        "bmc.accounts",
        "bmc.session.timeout_s",
        "bmc.account.lockout_threshold",
    }


@settings(max_examples=300, deadline=None)
@given(fact=st.sampled_from(BMC_FACTS), value=json_values)
def test_read_never_raises(fact: str, value: JsonValue) -> None:
    reading = ObservedBmc.read({fact: value})
    field = next(n for n, i in ObservedBmc.model_fields.items() if i.alias == fact)
    typed = getattr(reading.facts, field)
    # Either the value was read, or it is named as unreadable, never both.
    assert (fact in reading.unreadable) == (typed is None and value is not None)


@pytest.mark.parametrize(
    ("control", "facts", "was_pass"),
    [
        # Both PASSed before the facts were typed: a string "yes" read as "write refused", and
        # a flag read as a number of seconds.
        ("OOB-009", {"redfish__anonymous_write": "yes"}, "refused"),
        ("OOB-017", {"session__timeout_s": True}, "True s"),
        ("OOB-012", {"account__lockout_threshold": "5"}, None),
        ("OOB-015", {"accounts": [{"username": None, "role": "Administrator"}]}, None),
        ("FW-004", {"systems": [{"id": "1", "tpm": "TPM2_0"}]}, None),
    ],
)
def test_a_wrong_shape_is_not_evaluated_with_its_reason(
    tmp_path: Path, control: str, facts: dict[str, Any], was_pass: str | None
) -> None:
    finding = one(tmp_path, control, [doc(**facts)])
    assert finding.status is Status.NOT_EVALUATED, finding.message
    fact = "bmc." + next(iter(facts)).replace("__", ".")
    assert f"unparseable {fact} in ev.json" in finding.message
    if was_pass is not None:
        assert was_pass not in finding.message


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    control=st.sampled_from(SCAN_CONTROLS),
    case=st.sampled_from(CASES),
    fact=st.sampled_from(BMC_FACTS),
    value=json_values,
)
def test_a_mutated_fact_never_crashes_a_control(
    tmp_path: Path,
    control: str,
    case: tuple[str, dict[str, Any], Status, str],
    fact: str,
    value: JsonValue,
) -> None:
    facts = {**case[1], fact.removeprefix("bmc.").replace(".", "__"): value}
    for finding in run(tmp_path, control, [doc(**facts)]):
        assert finding.status is not Status.ERROR, finding.message


def test_the_scanner_records_a_wrong_shape_as_not_observed() -> None:
    obs = Observations()
    obs.set("bmc.session.timeout_s", "30")
    obs.set("bmc.account.lockout_threshold", 5)
    assert obs.observed == {"bmc.account.lockout_threshold": 5}
    assert obs.missing["bmc.session.timeout_s"].startswith(
        "the BMC reported bmc.session.timeout_s in an unexpected form (Input should be"
    )
