"""`gpufence mig check MODEL PROFILES [--format json]`: output contract and exit codes."""

from __future__ import annotations

import json

import pytest

from gpufence.cli import main


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["mig", "check", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_valid_geometry_with_placements(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _json(capsys, "0x2330", "3g.40gb,2g.20gb,1g.10gb,1g.10gb")
    assert code == 0
    assert set(doc) == {"valid", "placements", "reason"}
    assert doc["valid"] is True
    placements = doc["placements"]
    assert isinstance(placements, list)
    assert {(p["profile"], p["start"], p["size"]) for p in placements} == {
        ("3g.40gb", 4, 4),
        ("2g.20gb", 2, 2),
        ("1g.10gb", 0, 1),
        ("1g.10gb", 1, 1),
    }


def test_count_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _json(capsys, "H100-SXM5-80GB", "1g.10gb*7")
    assert code == 0 and len(doc["placements"]) == 7  # type: ignore[arg-type]
    code, doc = _json(capsys, "H100-SXM5-80GB", "1g.10gb*8")
    assert code == 1 and doc["valid"] is False and "at most 7 per GPU" in str(doc["reason"])


@pytest.mark.parametrize(
    ("model", "profiles", "reason"),
    [
        ("H100-SXM5-80GB", "4g.40gb,4g.40gb", "at most 1 per GPU"),
        ("H100-SXM5-80GB", "3g.40gb*3", "at most 2 per GPU"),
        ("H100-SXM5-80GB", "1g.10gb+me,1g.10gb+me", "at most 1 per GPU"),
        ("A30", "2g.12gb*2,1g.6gb", "compute slices"),
    ],
)
def test_invalid_exits_1_with_reason(
    capsys: pytest.CaptureFixture[str], model: str, profiles: str, reason: str
) -> None:
    code, doc = _json(capsys, model, profiles)
    assert code == 1
    assert doc["valid"] is False and doc["placements"] == [] and reason in str(doc["reason"])


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mig", "check", "NVIDIA A30", "4g.24gb"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A30: valid") and "4g.24gb" in out and "start 0" in out
    assert main(["mig", "check", "a30", "4g.24gb,1g.6gb"]) == 1
    assert "INVALID" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("model", "profiles", "message"),
    [
        ("H999", "1g.10gb", "unknown GPU model 'H999'"),
        ("H100-SXM5-80GB", "1g.5gb", "has no MIG profile 1g.5gb"),
        ("l40s", "1g.5gb", "has no MIG"),
        ("H100-SXM5-80GB", "1g.10gb*zero", "bad MIG profile item"),
        ("H100-SXM5-80GB", ",", "bad MIG profile item"),
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], model: str, profiles: str, message: str
) -> None:
    assert main(["mig", "check", model, profiles, "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert "Traceback" not in captured.err


def test_mig_help_lists_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mig", "--help"]) == 0
    assert "check" in capsys.readouterr().out
