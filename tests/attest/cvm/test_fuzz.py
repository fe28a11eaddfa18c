"""Arbitrary bytes never crash the parsers or verifiers: a failed parse step, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufence.attest.cvm.snp import SnpOptions, verify_snp
from gpufence.attest.cvm.tdx import TdxOptions, verify_tdx
from tests.attest.cvm.conftest import SNP_AT, TDX_AT, snp_sample, tdx_sample

FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
TDX_QUOTE = tdx_sample("trustee-v4").quote
SNP_SAMPLE = snp_sample("trustee-milan")


@FUZZ
@given(st.binary(max_size=6000))
def test_random_bytes_as_tdx_quote(data: bytes) -> None:
    assert verify_tdx(data, TdxOptions(TDX_AT)).verdict == "fail"


@FUZZ
@given(st.integers(0, len(TDX_QUOTE)), st.binary(max_size=300))
def test_real_quote_prefix_with_random_tail(cut: int, tail: bytes) -> None:
    data = TDX_QUOTE[:cut] + tail
    if data == TDX_QUOTE:
        return
    assert verify_tdx(data, tdx_sample("trustee-v4").strict_options()).verdict == "fail"


@FUZZ
@given(st.binary(min_size=1184, max_size=1184) | st.binary(max_size=2000))
def test_random_bytes_as_snp_report(data: bytes) -> None:
    assert verify_snp(data, SNP_SAMPLE.certs, SnpOptions(SNP_AT)).verdict == "fail"
