"""Bad inventories: exit 2, file:line:column, a one-line explanation, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gpufence.cli import main
from tests.inventories import base_inventory, write_inventory


def _text_with(mutation: str, replacement: str) -> str:
    text = yaml.safe_dump(base_inventory(), sort_keys=False)
    assert mutation in text, mutation
    return text.replace(mutation, replacement, 1)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def _audit_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    path = write_inventory(tmp_path, text)
    code = main(["audit", str(path)])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return captured.err


CASES = [
    # (id, original text, replacement, expected message fragment, line needle)
    (
        "unknown-key",
        "  gpus_per_node: 8",
        "  gpus_per_nod: 8",
        "unknown key 'gpus_per_nod'",
        "gpus_per_nod:",
    ),
    (
        "wrong-type",
        "  gpus_per_node: 8",
        "  gpus_per_node: eight",
        "valid integer",
        "gpus_per_node: eight",
    ),
    ("bad-enum", "  sharing: dedicated", "  sharing: timeslice", "sharing", "sharing: timeslice"),
    (
        "unknown-gpu",
        "  gpu_model: H100-SXM5-80GB",
        "  gpu_model: H1000-SXM",
        "unknown GPU model",
        "gpu_model: H1000-SXM",
    ),
    (
        "dangling-tenant",
        "  - tenant: alpha",
        "  - tenant: gamma",
        "unknown tenant 'gamma'",
        "tenant: gamma",
    ),
    ("dangling-site", "  site: fra1", "  site: fra9", "unknown site 'fra9'", "site: fra9"),
    (
        "dangling-bmc",
        "  - name: n1\n    bmc: n1-bmc",
        "  - name: n1\n    bmc: n2-bmc",
        "unknown BMC 'n2-bmc'",
        "bmc: n2-bmc",
    ),
    (
        "dangling-network",
        "  network: oob",
        "  network: oob2",
        "unknown network 'oob2'",
        "network: oob2",
    ),
    (
        "duplicate-name",
        "- name: beta",
        "- name: alpha",
        "duplicate tenant name 'alpha'",
        "- name: alpha\n",
    ),
    (
        "duplicate-key",
        "  gpus_per_node: 8",
        "  gpus_per_node: 8\n  gpus_per_node: 4",
        "duplicate key 'gpus_per_node'",
        "gpus_per_node: 4",
    ),
    ("bad-yaml", "  sharing: dedicated", "  sharing: [dedicated", "invalid YAML", None),
    ("bad-country", "  country: DE", "  country: Germany", "country", "country: Germany"),
    ("bad-version", "version: 1", "version: 2", "version", "version: 2"),
]


@pytest.mark.parametrize(
    ("original", "replacement", "fragment", "needle"),
    [pytest.param(o, r, f, n, id=i) for i, o, r, f, n in CASES],
)
def test_bad_inventory(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    original: str,
    replacement: str,
    fragment: str,
    needle: str | None,
) -> None:
    text = _text_with(original, replacement)
    err = _audit_error(tmp_path, text, capsys)
    assert err.startswith("gpufence: error: ")
    # Several errors may be reported, one per line; find the one this case is about.
    line = next((ln for ln in err.splitlines() if fragment in ln), err.splitlines()[0])
    match = re.match(r"(?:gpufence: error: )?(.+?):(\d+):(\d+): (.+)", line)
    assert match, err
    assert match.group(1).endswith("inv.yaml")
    assert fragment in err
    if needle is not None:
        expected_line = _line_of(
            text, needle.rstrip("\n").splitlines()[-1] if "\n" in needle else needle
        )
        if needle.endswith("\n"):  # the second occurrence is the duplicate
            expected_line = [
                n for n, line in enumerate(text.splitlines(), 1) if line.strip() == needle.strip()
            ][1]
        assert int(match.group(2)) == expected_line, (err, expected_line)


def test_unknown_key_suggests_the_right_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _audit_error(tmp_path, _text_with("  gpus_per_node: 8", "  gpus_per_nod: 8"), capsys)
    assert "did you mean 'gpus_per_node'?" in err


def test_unknown_gpu_lists_closest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _audit_error(
        tmp_path, _text_with("  gpu_model: H100-SXM5-80GB", "  gpu_model: H100-SXM9"), capsys
    )
    assert "closest:" in err and "H100" in err


def test_missing_required_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = base_inventory()
    del data["organization"]
    err = _audit_error(tmp_path, yaml.safe_dump(data, sort_keys=False), capsys)
    assert "missing required key 'organization'" in err


def test_several_errors_are_all_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _text_with("  - tenant: alpha", "  - tenant: gamma").replace(
        "site: fra1", "site: nowhere"
    )
    err = _audit_error(tmp_path, text, capsys)
    assert "unknown tenant 'gamma'" in err and "unknown site 'nowhere'" in err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("- just\n- a list\n", "an inventory is a YAML mapping"),
        ("version: 1\n\tbad: tab\n", "invalid YAML"),
    ],
)
def test_degenerate_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    assert fragment in _audit_error(tmp_path, text, capsys)


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err


def test_binary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["audit", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_yaml_12_booleans(tmp_path: Path) -> None:
    """`cc_mode: on` and `country: NO` keep their meaning (YAML 1.1 would make them booleans)."""
    from gpufence.load.inventory import load_inventory

    text = _text_with("  cc_mode: 'off'", "  cc_mode: on").replace("country: DE", "country: NO")
    inventory, _ = load_inventory(write_inventory(tmp_path, text))
    assert inventory.node_pools[0].gpu_state.cc_mode is not None
    assert inventory.node_pools[0].gpu_state.cc_mode.value == "on"
    assert inventory.organization.country == "NO"


def test_node_tenant_must_be_in_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = base_inventory()
    data["node_pools"][0]["nodes"][0]["tenants"] = ["beta"]
    err = _audit_error(tmp_path, yaml.safe_dump(data, sort_keys=False), capsys)
    assert "tenant 'beta' has no workload in pool 'pool1'" in err
