"""The vulnerability catalog data: validation, version schemes, and the judges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.catalog.vulnerabilities import (
    judge_bmc,
    judge_driver,
    judge_toolkit,
    parse_vulnerabilities,
    vulnerability_catalog,
)
from gpufence.errors import InternalError

CATALOG = vulnerability_catalog()


def test_every_entry_is_sourced() -> None:
    for vuln in CATALOG.bmc:
        assert vuln.advisory.startswith("https://") and vuln.sources
    for entry in (*CATALOG.nvidia_driver.entries, *CATALOG.nvidia_container_toolkit.entries):
        assert entry.advisory.startswith("https://") and entry.sources and entry.cves
    ids = {c for e in CATALOG.nvidia_container_toolkit.entries for c in e.cves}
    assert {"CVE-2024-0132", "CVE-2025-23266"} <= ids


@pytest.mark.parametrize(
    ("vendor", "model", "version", "status"),
    [
        ("AMI", "MegaRAC SP-X", "12.6.1", "vulnerable"),
        ("AMI", "MegaRAC SP-X", "13.5", "clean"),
        ("American Megatrends", "", "SPx 12.7", "clean"),
        ("AMI", "MegaRAC SP-X", "12.41.11", "unknown"),  # Gigabyte-style number, vendor unnamed
        ("GIGABYTE", "MegaRAC SP-X", "12.41.11", "vulnerable"),  # the OEM's own record
        ("GIGABYTE", "", "12.30.05", "vulnerable"),  # older build of the same line
        ("GIGABYTE", "", "12.50.02", "unknown"),  # between last-known-bad and first-known-good
        ("GIGABYTE", "", "12.61.39", "clean"),
        ("GIGABYTE", "", "12.7", "unknown"),  # not the OEM's scheme
        ("ASRockRack", "", "1.20.00", "unknown"),
        ("HPE", "iLO 4", "iLO 4 v2.50", "vulnerable"),
        ("HPE", "iLO 4", "iLO 4 v2.55", "clean"),
        ("HPE", "iLO 4", "build 2020-11", "unknown"),
        ("HPE", "iLO 6", "iLO 6 v1.66", "clean"),  # no entry for iLO 6
        ("Dell Inc.", "iDRAC9", "7.00.00.00", "clean"),
    ],
)
def test_bmc_schemes(vendor: str, model: str, version: str, status: str) -> None:
    assert judge_bmc(CATALOG, vendor, model, version).status == status


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_megarac_never_clean_on_unparsed_versions(version: str) -> None:
    # PASS is a promise: an OEM MegaRAC build is never "clean" unless its version parses as at
    # or above the first known fixed build.
    found = judge_bmc(CATALOG, "GIGABYTE", "MegaRAC", version)
    import re

    parsed = re.fullmatch(r"v?(\d{2})\.(\d{2})\.(\d{2})", version.strip())
    if found.status == "clean":
        assert parsed is not None and tuple(map(int, parsed.groups())) >= (12, 61, 39)
    assert judge_bmc(CATALOG, "ASRock Rack", "MegaRAC", version).status != "clean"
    assert judge_driver(CATALOG, version).status in ("vulnerable", "clean", "unknown")


def test_driver_later_branch_rule() -> None:
    # nvidia-2025-04 lists up to R575 and later branches were forked after the fix.
    found = judge_driver(CATALOG, "595.71.05")
    assert "nvidia-2025-04" in found.checked
    assert judge_toolkit(CATALOG, "1.16.2").status == "vulnerable"  # 1.17.4, 1.17.8 fixes
    assert judge_toolkit(CATALOG, "1.17.8").status == "clean"


def test_bad_data_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match=r"vulnerabilities\.yaml"):
        parse_vulnerabilities("reviewed: 2026-01-01\nbmc_products: []\n")
