"""CMP-001: export licences by destination country group and owner headquarters, dated rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.audit import audit_snapshot
from gpufence.catalog import load_catalog
from gpufence.catalog.export_rules import export_rules, licence_requirements
from gpufence.controls import controls_by_id
from gpufence.load.inventory import load_snapshot
from gpufence.model.context import AuditContext
from gpufence.model.findings import Finding, Status
from tests.inventories import base_inventory, write_inventory

RULES = export_rules()
TODAY = RULES.reviewed + dt.timedelta(days=10)


def judge(
    tmp_path: Path,
    *,
    part: str = "B300",
    site: str = "DE",
    owner: str = "DE",
    org: dict[str, Any] | None = None,
    authorizations: list[dict[str, Any]] | None = None,
    context: AuditContext | None = None,
) -> Finding:
    data = base_inventory()
    data["organization"] = {"name": "Owner", "country": owner, **(org or {})}
    data["sites"][0]["country"] = site
    if authorizations is not None:
        data["sites"][0]["export_authorizations"] = authorizations
    data["node_pools"][0]["gpu_model"] = part
    snapshot = load_snapshot(write_inventory(tmp_path, data), [])
    snapshot = dataclasses.replace(snapshot, context=context or AuditContext(today=TODAY))
    (finding,) = audit_snapshot(snapshot, [controls_by_id()["CMP-001"]]).findings
    return finding


def test_chinese_owner_with_b300_in_china_fails(tmp_path: Path) -> None:
    finding = judge(tmp_path, site="CN", owner="CN")
    assert finding.status is Status.FAIL, finding.message
    requirements = {r["requirement"] for r in finding.evidence["requirements"]}
    assert requirements == {"destination", "headquarters"}
    assert "744.23(a)(3)" in finding.message and "D:5" in finding.message


def test_us_owner_with_b300_in_germany_passes(tmp_path: Path) -> None:
    finding = judge(tmp_path, site="DE", owner="US")
    assert finding.status is Status.PASS, finding.message
    assert "no licence requirement" in finding.message


@pytest.mark.parametrize(
    ("country", "group"),
    [("VN", "D:1"), ("SA", "D:4"), ("ZW", "D:5"), ("MO", "Macau"), ("HK", "D:5")],
)
def test_each_destination_group_needs_a_licence(tmp_path: Path, country: str, group: str) -> None:
    assert country not in ("CN",)  # the groups are told apart by countries in only one of them
    finding = judge(tmp_path, site=country, owner="US")
    assert finding.status is Status.FAIL, finding.message
    assert group in finding.message


def test_a6_destination_in_d4_is_excluded(tmp_path: Path) -> None:
    # Israel is in D:4 and A:6; the destination requirement excludes A:5/A:6 countries.
    assert "D:4" in RULES.groups_of("IL", TODAY)
    assert judge(tmp_path, site="IL", owner="US").status is Status.PASS


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        ({"headquarters_country": "CN"}, Status.FAIL),  # subsidiary in DE, headquarters in China
        ({"ultimate_parent_country": "MO"}, Status.FAIL),  # ultimate parent in Macau
        ({"ultimate_parent_country": "RU"}, Status.FAIL),  # D:5
        ({"headquarters_country": "VN"}, Status.PASS),  # D:1 only: the headquarters rule is D:5
        ({"ultimate_parent_country": "US"}, Status.PASS),
    ],
)
def test_headquarters_rule_applies_wherever_the_parts_are(
    tmp_path: Path, org: dict[str, Any], expected: Status
) -> None:
    finding = judge(tmp_path, site="DE", owner="DE", org=org)
    assert finding.status is expected, finding.message
    if expected is Status.FAIL:
        assert [r["requirement"] for r in finding.evidence["requirements"]] == ["headquarters"]
        assert "wherever the parts are" in finding.message


def test_headquarters_rule_is_about_exports_not_parts_in_the_us(tmp_path: Path) -> None:
    # BIS 2026-05-31: the requirement applies "to all destinations outside the United States".
    assert judge(tmp_path, site="US", owner="CN").status is Status.PASS
    assert judge(tmp_path, site="SG", owner="CN").status is Status.FAIL


def test_cambodia_left_d5_on_2026_02_03(tmp_path: Path) -> None:
    def owner_in_kh(day: str) -> Finding:
        ctx = AuditContext(today=TODAY, as_of=dt.date.fromisoformat(day))
        return judge(tmp_path, site="DE", owner="KH", context=ctx)

    assert owner_in_kh("2026-02-02").status is Status.FAIL  # D:5: headquarters rule
    assert owner_in_kh("2026-02-03").status is Status.PASS  # D:1 only
    assert judge(tmp_path, site="KH", owner="US").status is Status.FAIL  # still D:1


def test_recorded_licence_passes_and_expired_or_other_model_does_not(tmp_path: Path) -> None:
    licence = {"kind": "licence", "reference": "D123456", "gpu_models": ["B300"]}
    finding = judge(tmp_path, site="CN", owner="US", authorizations=[licence])
    assert finding.status is Status.PASS and "D123456" in finding.message
    expired = {**licence, "expires": str(TODAY - dt.timedelta(days=1))}
    finding = judge(tmp_path, site="CN", owner="US", authorizations=[expired])
    assert finding.status is Status.FAIL and "expired: D123456" in finding.message
    other = {**licence, "gpu_models": ["H100-SXM5-80GB"]}
    assert judge(tmp_path, site="CN", owner="US", authorizations=[other]).status is Status.FAIL
    every_model = {"kind": "licence-exception", "reference": "ACA"}
    assert judge(tmp_path, site="CN", owner="US", authorizations=[every_model]).status is (
        Status.PASS
    )


def test_unclassified_part_is_not_evaluated(tmp_path: Path) -> None:
    finding = judge(tmp_path, part="A10", site="CN", owner="CN")
    assert finding.status is Status.NOT_EVALUATED
    assert finding.evidence["missing"] == "export classification"


def test_stale_rule_set_is_not_evaluated(tmp_path: Path) -> None:
    late = AuditContext(today=RULES.reviewed + dt.timedelta(days=400))
    finding = judge(tmp_path, site="CN", owner="CN", context=late)
    assert finding.status is Status.NOT_EVALUATED and "last reviewed" in finding.message
    lenient = AuditContext(today=late.today, export_rules_max_age_days=500)
    assert judge(tmp_path, site="CN", owner="CN", context=lenient).status is Status.FAIL


def test_as_of_picks_the_rule_set_in_force(tmp_path: Path) -> None:
    def at(day: str, part: str = "H200") -> Finding:
        ctx = AuditContext(today=TODAY, as_of=dt.date.fromisoformat(day))
        return judge(tmp_path, part=part, site="CN", owner="US", context=ctx)

    before = at("2023-06-01")
    assert before.status is Status.NOT_EVALUATED and "no export rule set" in before.message
    denial = at("2025-12-01")
    assert denial.status is Status.FAIL and denial.evidence["rule_set"] == "ear-2025-05"
    assert "presumption of denial" in denial.message
    case_by_case = at("2026-02-01")
    assert case_by_case.evidence["rule_set"] == "ear-2026-01"
    assert at("2026-06-01").evidence["rule_set"] == "ear-2026-05"
    assert case_by_case.status is Status.FAIL and "case-by-case" in case_by_case.message
    # Blackwell is above the H200 thresholds: no case-by-case review.
    blackwell = at("2026-02-01", "B300").evidence["requirements"][0]["review_policy"]
    h200 = case_by_case.evidence["requirements"][0]["review_policy"]
    assert "from the United States" in h200 and "from the United States" not in blackwell
    # H20: no classification before the April 2025 "is informed" letter, a licence after it.
    assert at("2025-03-01", "H20").status is Status.NOT_EVALUATED
    assert at("2025-04-10", "H20").status is Status.FAIL


def test_rule_data_is_consistent_with_the_catalog_and_sourced() -> None:
    keys = set(load_catalog().keys())
    for cls in RULES.classes:
        assert set(cls.parts) <= keys, set(cls.parts) - keys
    for source in RULES.sources.values():
        assert source.url.startswith("https://")
    assert RULES.groups_of("DE", TODAY) == ()  # Germany is in no D group
    assert set(RULES.groups_of("CN", TODAY)) == {"D:1", "D:4", "D:5"}
    assert RULES.version_on(RULES.versions[-1].effective) == RULES.versions[-1]


def test_unknown_model_in_a_licence_is_an_input_error(tmp_path: Path) -> None:
    from gpufence.errors import InputError

    data = base_inventory()
    data["sites"][0]["export_authorizations"] = [
        {"kind": "licence", "reference": "D1", "gpu_models": ["H999"]}
    ]
    with pytest.raises(InputError, match="H999") as caught:
        load_snapshot(write_inventory(tmp_path, data), [])
    assert caught.value.location is not None and caught.value.location.line is not None


_CODES = sorted(
    {c for g in RULES.country_groups.values() for c in g.members} | {"DE", "US", "HK", "JP", "KH"}
)


@settings(max_examples=300, deadline=None)
@given(
    part=st.sampled_from(sorted({p for c in RULES.classes for p in c.parts})),
    site=st.sampled_from(_CODES),
    hq=st.lists(st.sampled_from(_CODES), min_size=1, max_size=2),
    day=st.dates(min_value=dt.date(2023, 11, 17), max_value=dt.date(2027, 1, 1)),
)
def test_requirements_are_monotone_in_groups(
    part: str, site: str, hq: list[str], day: dt.date
) -> None:
    # Adversarial: whatever the inputs, a D:5/Macau destination of a classified part always needs a
    # licence, a destination in no group with an owner outside D:5/Macau never does, and moving
    # the owner into D:5 can only add requirements.
    version = RULES.version_on(day)
    assert version is not None
    if not RULES.classes_of(part, day):
        return
    needs = licence_requirements(
        RULES, version, part, day, destination=site, headquarters=tuple(hq)
    )
    site_groups = set(RULES.groups_of(site, day))
    hq_groups = {g for c in hq for g in RULES.groups_of(c, day)}
    if site_groups & {"D:5", "Macau"}:
        assert needs
    if not site_groups and not hq_groups & {"D:5", "Macau"}:
        assert not needs
    worse = licence_requirements(
        RULES, version, part, day, destination=site, headquarters=(*hq, "RU")
    )
    assert {n.requirement.id for n in needs} <= {n.requirement.id for n in worse}
    if site != "US":
        assert any(n.requirement.headquarters_in for n in worse)
