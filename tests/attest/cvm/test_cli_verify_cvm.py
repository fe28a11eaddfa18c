"""`gpufence attest verify-cvm`: exit codes 0/1/2, JSON shape, no exit 3 on malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpufence.attest.cvm.snp_report import parse_snp_report
from gpufence.attest.cvm.tdx_quote import parse_tdx_quote
from gpufence.cli import main
from tests.attest.cvm.conftest import COLLATERAL, SNP, TDX

AT_SNP = "2026-11-25T00:00:00Z"
AT_TDX = "2023-07-01T00:00:00Z"
MILAN = SNP / "trustee-milan-report.bin"
MILAN_CERTS = [
    "--certs",
    str(SNP / "trustee-milan-vcek.der"),
    "--certs",
    str(SNP / "ask_ark_milan.pem"),
]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["attest", "verify-cvm", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _snp_strict() -> list[str]:
    report = parse_snp_report(MILAN.read_bytes())
    return [
        "--report-data",
        report.report_data.hex(),
        "--measurement",
        report.measurement.hex(),
        "--min-tcb",
        "3,0,8,115",
    ]


def test_snp_pass_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "--kind",
        "sev-snp",
        "--report",
        str(MILAN),
        *MILAN_CERTS,
        *_snp_strict(),
        "--at",
        AT_SNP,
        "--format",
        "json",
    )
    document = json.loads(out)
    assert code == 0 and document["verdict"] == "pass"
    assert document["waived"] == []
    assert {s["name"] for s in document["steps"]} >= {"signature", "cert_chain", "policy.debug"}


def test_snp_without_policy_inputs_is_incomplete_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, "--at", AT_SNP
    )
    assert code == 1
    assert out.startswith("verdict: INCOMPLETE")
    assert "not evaluated: tcb.minimum, measurement, report_data" in out


def test_snp_wrong_report_data_fails(capsys: pytest.CaptureFixture[str]) -> None:
    args = _snp_strict()
    args[1] = "00" * 64
    code, out, _ = _run(
        capsys, "--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, *args, "--at", AT_SNP
    )
    assert code == 1 and out.startswith("verdict: FAIL") and "FAIL report_data" in out


def test_snp_hex_report_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hexed = tmp_path / "report.hex"
    hexed.write_text(MILAN.read_bytes().hex() + "\n")
    code, _, _ = _run(
        capsys,
        "--kind",
        "sev-snp",
        "--report",
        str(hexed),
        *MILAN_CERTS,
        *_snp_strict(),
        "--at",
        AT_SNP,
    )
    assert code == 0


def test_tdx_pass_with_collateral(capsys: pytest.CaptureFixture[str]) -> None:
    quote = TDX / "trustee-tdx-quote-v4.dat"
    body = parse_tdx_quote(quote.read_bytes()).body
    rtmrs = [a for i, v in enumerate(body.rtmrs) for a in ("--rtmr", f"{i}={v.hex()}")]
    code, out, _ = _run(
        capsys,
        "--kind",
        "tdx",
        "--report",
        str(quote),
        "--collateral",
        str(COLLATERAL),
        "--measurement",
        body.mrtd.hex(),
        *rtmrs,
        "--report-data",
        body.report_data.hex(),
        "--allow-debug",
        "--at",
        AT_TDX,
        "--format",
        "json",
    )
    assert code == 0, out
    assert json.loads(out)["verdict"] == "pass"


def test_tdx_without_collateral_never_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "--kind",
        "tdx",
        "--report",
        str(TDX / "go-tdx-guest-SPR-E4-quote.dat"),
        "--at",
        AT_TDX,
    )
    assert code == 1
    assert "N/E  collateral.tcb_info: no collateral given (offline)" in out


@pytest.mark.parametrize(
    ("kind", "content", "extra"),
    [
        ("sev-snp", b"", MILAN_CERTS),
        ("sev-snp", b"\x02" * 100, MILAN_CERTS),
        ("sev-snp", MILAN.read_bytes()[:-1], MILAN_CERTS),
        ("sev-snp", b"abc", MILAN_CERTS),
        ("tdx", b"\x04\x00\x02\x00" + b"\xff" * 700, []),
        ("tdx", (TDX / "trustee-tdx-quote-v4.dat").read_bytes()[:1000], []),
    ],
)
def test_malformed_report_is_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    content: bytes,
    extra: list[str],
) -> None:
    path = tmp_path / "evidence.bin"
    path.write_bytes(content)
    code, _, err = _run(capsys, "--kind", kind, "--report", str(path), *extra)
    assert code == 2, err
    assert str(path) in err and "Traceback" not in err


def test_malformed_certificates_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    der = bytearray((SNP / "trustee-milan-vcek.der").read_bytes())
    der[200] ^= 0xFF
    bad = tmp_path / "vcek.der"
    bad.write_bytes(bytes(der))
    code, _, err = _run(
        capsys,
        "--kind",
        "sev-snp",
        "--report",
        str(MILAN),
        "--certs",
        str(bad),
        "--certs",
        str(SNP / "ask_ark_milan.pem"),
    )
    assert code in (1, 2) and "Traceback" not in err
    bad.write_bytes(b"\x30\x82\xff\xff garbage")
    code, _, err = _run(capsys, "--kind", "sev-snp", "--report", str(MILAN), "--certs", str(bad))
    assert code == 2 and "not a PEM or DER certificate" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--kind", "sev-snp", "--report", str(MILAN)],  # no --certs
        ["--kind", "tdx", "--report", str(MILAN), "--certs", str(MILAN)],
        ["--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, "--report-data", "zz"],
        ["--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, "--measurement", "00"],
        ["--kind", "tdx", "--report", str(MILAN), "--rtmr", "7=00"],
        ["--kind", "tdx", "--report", str(MILAN), "--collateral", "/nonexistent"],
        ["--kind", "sev-snp", "--report", "/nonexistent", *MILAN_CERTS],
        ["--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, "--at", "yesterday"],
        ["--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, "--min-tcb", "3,0,8"],
    ],
)
def test_bad_arguments_are_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = _run(capsys, *args)
    assert code == 2 and "Traceback" not in err


def test_min_tcb_above_the_report_fails(capsys: pytest.CaptureFixture[str]) -> None:
    args = [a if a != "3,0,8,115" else "3,0,9,115" for a in _snp_strict()]
    code, out, _ = _run(
        capsys, "--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, *args, "--at", AT_SNP
    )
    assert code == 1 and "FAIL tcb.minimum" in out


def test_waiver_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*_snp_strict()[:4], "--waive", "tcb.minimum"]
    code, out, _ = _run(
        capsys, "--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, *args, "--at", AT_SNP
    )
    assert code == 0 and "N/E  tcb.minimum: no minimum TCB given (waived)" in out


def test_unknown_or_blanket_waivers_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for waiver in ("nonce", "rtmr*", "*"):
        code, _, err = _run(
            capsys, "--kind", "sev-snp", "--report", str(MILAN), *MILAN_CERTS, "--waive", waiver
        )
        assert code == 2 and "--waive" in err, waiver
