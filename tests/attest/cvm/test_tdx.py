"""TDX v4 verification on real public quotes, with and without collateral."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpufence.attest.cvm.tdx import TdxOptions, verify_tdx
from gpufence.attest.cvm.tdx_collateral import load_collateral
from gpufence.attest.cvm.tdx_quote import BODY_END, parse_tdx_quote
from gpufence.errors import InputError
from tests.attest.cvm.conftest import COLLATERAL, TDX, TDX_AT, TDX_SAMPLES, tdx_sample

STRUCTURAL = (
    "evidence.parse",
    "qe_vendor",
    "cert_chain",
    "qe_report.signature",
    "qe_report.binding",
    "signature",
    "td.seam_attributes",
)
COLLATERAL_STEPS = (
    "collateral.signing_chain",
    "collateral.tcb_info",
    "collateral.qe_identity",
    "collateral.tcb_level",
)


@pytest.mark.parametrize("name", sorted(TDX_SAMPLES))
def test_real_quote_passes_every_structural_step(name: str) -> None:
    sample = tdx_sample(name)
    result = verify_tdx(sample.quote, TdxOptions(TDX_AT))
    for step in STRUCTURAL:
        assert result.step(step).status == "pass", result.step(step)  # type: ignore[union-attr]
    # No collateral, no allow-lists: those steps are not evaluated, and never pass.
    for step in (*COLLATERAL_STEPS, "mrtd", "rtmr0", "report_data"):
        assert result.step(step).status == "not_evaluated"  # type: ignore[union-attr]
    assert result.verdict != "pass"


@pytest.mark.parametrize("name", sorted(TDX_SAMPLES))
def test_real_quote_passes_with_its_own_values_as_policy(name: str) -> None:
    sample = tdx_sample(name)
    result = verify_tdx(sample.quote, sample.strict_options())
    assert result.verdict == "pass", [s for s in result.steps if s.status != "pass"]


def test_collateral_from_files_verifies_for_the_matching_quote() -> None:
    result = verify_tdx(tdx_sample("trustee-v4").quote, tdx_sample("trustee-v4").strict_options())
    for step in COLLATERAL_STEPS:
        assert result.step(step).status == "pass", result.step(step)  # type: ignore[union-attr]


def test_unsupported_tcb_is_a_failure() -> None:
    """The SPR E4 quote's PCK TCB SVNs are below every level of the 2023-06 TCB info."""
    sample = tdx_sample("go-tdx-guest-SPR-E4")
    options = dataclasses.replace(sample.strict_options(), collateral=load_collateral(COLLATERAL))
    result = verify_tdx(sample.quote, options)
    assert result.step("collateral.tcb_level").status == "fail"  # type: ignore[union-attr]
    assert result.verdict == "fail"


def test_stale_collateral_is_never_a_pass() -> None:
    sample = tdx_sample("trustee-v4")
    late = dataclasses.replace(sample.strict_options(), at=datetime(2024, 6, 1, tzinfo=UTC))
    result = verify_tdx(sample.quote, late)
    assert result.step("collateral.tcb_info").status == "not_evaluated"  # type: ignore[union-attr]
    assert result.verdict == "incomplete"
    expired = dataclasses.replace(late, at=datetime(2026, 11, 25, tzinfo=UTC))
    result = verify_tdx(sample.quote, expired)
    assert result.step("collateral.signing_chain").status == "not_evaluated"  # type: ignore[union-attr]
    assert result.verdict == "incomplete"


def test_tampered_collateral_is_refused(tmp_path: Path) -> None:
    sample = tdx_sample("trustee-v4")
    for name in ("tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem"):
        shutil.copy(COLLATERAL / name, tmp_path / name)
    text = (tmp_path / "tcb_info.json").read_text()
    (tmp_path / "tcb_info.json").write_text(text.replace('"OutOfDate"', '"UpToDate"'))
    options = dataclasses.replace(sample.strict_options(), collateral=load_collateral(tmp_path))
    result = verify_tdx(sample.quote, options)
    assert result.step("collateral.tcb_info").status == "fail"  # type: ignore[union-attr]
    assert result.step("collateral.tcb_level").status == "fail"  # type: ignore[union-attr]


def test_missing_or_malformed_collateral_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lacks"):
        load_collateral(tmp_path)
    for name in ("tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem"):
        shutil.copy(COLLATERAL / name, tmp_path / name)
    (tmp_path / "qe_identity.json").write_text(json.dumps({"enclaveIdentity": {}}))
    with pytest.raises(InputError):
        load_collateral(tmp_path)


def test_debug_td_is_refused_unless_allowed() -> None:
    sample = tdx_sample("trustee-v4")
    assert parse_tdx_quote(sample.quote).body.debug
    strict = dataclasses.replace(sample.strict_options(), allow_debug=False)
    result = verify_tdx(sample.quote, strict)
    assert result.step("td.debug").status == "fail"  # type: ignore[union-attr]
    assert result.verdict == "fail"


def test_mrtd_and_rtmr_allow_lists() -> None:
    sample = tdx_sample("go-tdx-guest-SPR-E4")
    options = sample.strict_options()
    other = dataclasses.replace(options, mrtds=frozenset({bytes(48)}))
    assert verify_tdx(sample.quote, other).step("mrtd").status == "fail"  # type: ignore[union-attr]
    rtmrs = dict(options.rtmrs)
    rtmrs[2] = frozenset({bytes(48)})
    other = dataclasses.replace(options, rtmrs=rtmrs)
    result = verify_tdx(sample.quote, other)
    assert result.step("rtmr2").status == "fail"  # type: ignore[union-attr]
    assert result.verdict == "fail"


def test_trailing_bytes_are_refused() -> None:
    """go-tdx-guest appends 39 unsigned bytes to its sample; the quote ends at its signature."""
    data = (TDX / "go-tdx-guest-SPR-E4-quote-with-test-tail.dat").read_bytes()
    result = verify_tdx(data, TdxOptions(TDX_AT))
    assert result.steps[0].status == "fail" and "after the signature data" in result.steps[0].detail
    padded = tdx_sample("go-tdx-guest-SPR-E4").quote + bytes(16)
    assert verify_tdx(padded, TdxOptions(TDX_AT)).verdict == "fail"


@pytest.mark.parametrize("name", sorted(TDX_SAMPLES))
def test_every_truncation_is_refused(name: str) -> None:
    sample = tdx_sample(name)
    options = sample.strict_options()
    cuts = sorted({*range(0, BODY_END + 80, 7), *range(len(sample.quote) - 40, len(sample.quote))})
    for cut in cuts:
        result = verify_tdx(sample.quote[:cut], options)
        assert result.steps[0].name == "evidence.parse" and result.steps[0].status == "fail", cut


def test_other_versions_and_tee_types_are_refused() -> None:
    quote = bytearray(tdx_sample("trustee-v4").quote)
    for offset, value in ((0, 5), (2, 3), (4, 0)):
        mutated = bytearray(quote)
        mutated[offset] = value
        assert verify_tdx(bytes(mutated), TdxOptions(TDX_AT)).steps[0].status == "fail"
