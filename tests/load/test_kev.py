"""Reading a CISA KEV catalog file: real shape, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpufence.errors import InputError
from gpufence.load.kev import load_kev

KEV = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2026.12.01",
    "dateReleased": "2026-12-01T15:00:00.0000Z",
    "count": 2,
    "vulnerabilities": [
        {
            "cveID": "CVE-2024-54085",
            "vendorProject": "AMI",
            "product": "MegaRAC SPx",
            "vulnerabilityName": "AMI MegaRAC SPx Authentication Bypass",
            "dateAdded": "2025-06-25",
            "shortDescription": "...",
            "requiredAction": "Apply mitigations per vendor instructions.",
            "dueDate": "2025-07-16",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
            "cwes": ["CWE-290"],
        },
        {"cveID": "CVE-2025-23266", "dateAdded": "2026-01-01"},
    ],
}


def test_reads_cisa_shape(tmp_path: Path) -> None:
    path = tmp_path / "known_exploited_vulnerabilities.json"
    path.write_text(json.dumps(KEV))
    flags = load_kev(path)
    assert set(flags) == {"CVE-2024-54085", "CVE-2025-23266"}
    assert "2026.12.01" in flags["CVE-2024-54085"] and "2025-06-25" in flags["CVE-2024-54085"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"vulnerabilities": [', "not valid JSON"),
        ('{"vulnerabilities": [{"cveID": "nope", "dateAdded": "2025-01-01"}]}', "cveID"),
        ('{"count": 0}', "vulnerabilities"),
    ],
)
def test_bad_files_are_input_errors(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "kev.json"
    path.write_text(text)
    with pytest.raises(InputError, match=words) as caught:
        load_kev(path)
    assert caught.value.exit_code == 2 and str(path) in caught.value.diagnostics()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_kev(tmp_path / "absent.json")
