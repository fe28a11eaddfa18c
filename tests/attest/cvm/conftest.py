"""Real public SEV-SNP / TDX samples (tests/data/cvm, see its README) and their options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from gpufence.attest.cvm.inputs import load_certificates, read_evidence
from gpufence.attest.cvm.snp import SnpOptions
from gpufence.attest.cvm.snp_report import parse_snp_report
from gpufence.attest.cvm.tdx import TdxOptions
from gpufence.attest.cvm.tdx_collateral import load_collateral
from gpufence.attest.cvm.tdx_quote import parse_tdx_quote
from tests.attest.cvmfactory import AmdTestPki

DATA = Path(__file__).resolve().parents[2] / "data" / "cvm"
SNP = DATA / "sev-snp"
TDX = DATA / "tdx"
COLLATERAL = TDX / "collateral-go-tdx-guest"
SNP_AT = datetime(2026, 11, 25, tzinfo=UTC)
"""Every SNP sample's VCEK/ASK/ARK is valid then."""
TDX_AT = datetime(2023, 7, 1, tzinfo=UTC)
"""Inside the collateral's issueDate..nextUpdate and the TCB signing certificate's validity."""


@dataclass(frozen=True)
class SnpSample:
    name: str
    report: bytes
    certs: tuple[x509.Certificate, ...]
    debug: bool

    def strict_options(self) -> SnpOptions:
        """Options under which this sample passes every step (allow-lists = its own values)."""
        parsed = parse_snp_report(self.report)
        return SnpOptions(
            SNP_AT,
            expected_report_data=parsed.report_data,
            measurements=frozenset({parsed.measurement}),
            min_tcb=parsed.reported_tcb,
            allow_debug=self.debug,
        )


SNP_SAMPLES = {
    "go-sev-guest-milan": (
        "go-sev-guest-milan-report.bin",
        "go-sev-guest-milan-vcek.der",
        "ask_ark_milan.pem",
        True,
    ),
    "trustee-milan": (
        "trustee-milan-report.bin",
        "trustee-milan-vcek.der",
        "ask_ark_milan.pem",
        False,
    ),
    "virtee-milan": (
        "virtee-milan-report.hex",
        "virtee-milan-vcek.der",
        "ask_ark_milan.pem",
        False,
    ),
    "trustee-azure-genoa": (
        "trustee-azure-genoa-report.bin",
        "trustee-azure-genoa-vcek.pem",
        "ask_ark_genoa.pem",
        False,
    ),
}


def snp_sample(name: str) -> SnpSample:
    report, vcek, chain, debug = SNP_SAMPLES[name]
    certs = load_certificates([SNP / vcek, SNP / chain])
    return SnpSample(name, read_evidence(SNP / report), tuple(certs), debug)


@dataclass(frozen=True)
class TdxSample:
    name: str
    quote: bytes
    debug: bool
    collateral_matches: bool

    def strict_options(self) -> TdxOptions:
        """Options under which this sample passes every step it can."""
        body = parse_tdx_quote(self.quote).body
        return TdxOptions(
            TDX_AT,
            expected_report_data=body.report_data,
            mrtds=frozenset({body.mrtd}),
            rtmrs={i: frozenset({v}) for i, v in enumerate(body.rtmrs)},
            collateral=load_collateral(COLLATERAL) if self.collateral_matches else None,
            allow_debug=self.debug,
            waivers=frozenset()
            if self.collateral_matches
            else frozenset(
                f"collateral.{n}" for n in ("signing_chain", "tcb_info", "qe_identity", "tcb_level")
            ),
        )


TDX_SAMPLES = {
    # The SPR E4 quote's PCK TCB is below every level of the 2023-06 TCB info (a real "TCB
    # unsupported" outcome), so its strict options run without collateral (waived by name).
    "go-tdx-guest-SPR-E4": ("go-tdx-guest-SPR-E4-quote.dat", False, False),
    "trustee-v4": ("trustee-tdx-quote-v4.dat", True, True),
}


def tdx_sample(name: str) -> TdxSample:
    path, debug, matches = TDX_SAMPLES[name]
    return TdxSample(name, (TDX / path).read_bytes(), debug, matches)


@pytest.fixture(scope="session")
def amd_pki() -> AmdTestPki:
    return AmdTestPki()
