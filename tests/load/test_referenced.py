"""Files named by the inventory (the broker configuration) reach the controls as evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpufence.cli import main
from tests.inventories import base_inventory, write_inventory

BROKER = """\
broker:
  audience: gpufence-broker/test
  kek: {source: embedded}
  revocation: {mode: offline}
  token_ttl_s: 300
  policy:
    id: weights-release
    version: 3
    accept_not_evaluated: [revocation]
"""


def _inventory(tmp_path: Path, broker_config: str | None) -> Path:
    data = base_inventory()
    data["tenants"][0]["data_sensitivity"] = "confidential"
    if broker_config is not None:
        data["secrets"]["key_release"]["broker_config"] = broker_config
    return write_inventory(tmp_path, data)


def _statuses(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, str]:
    main(["audit", str(path), "-f", "json", "--fail-on", "never"])
    doc = json.loads(capsys.readouterr().out)
    return {
        f["control"]: f["status"]
        for f in doc["findings"]
        if f["control"] in {"CC-005", "CC-006", "DAT-004", "DAT-005"}
    }


def test_broker_config_is_read_relative_to_the_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broker").mkdir()
    (tmp_path / "broker" / "broker.yaml").write_text(BROKER)
    statuses = _statuses(capsys, _inventory(tmp_path, "broker/broker.yaml"))
    # Embedded KEK and offline revocation are what this config declares: both must fail.
    assert statuses["DAT-005"] == "FAIL"
    assert statuses["CC-006"] == "FAIL"
    assert statuses["CC-005"] == "PASS"


def test_without_broker_config_the_controls_are_not_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statuses = _statuses(capsys, _inventory(tmp_path, None))
    assert set(statuses.values()) == {"NOT_EVALUATED"}


def test_missing_broker_config_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _inventory(tmp_path, "nope/broker.yaml")
    assert main(["audit", str(path)]) == 2
    err = capsys.readouterr().err
    assert "broker_config: no such file" in err and "inv.yaml:" in err
