"""SEV-SNP verification on real public reports and on reports a test AMD hierarchy signs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from gpufence.attest.cvm.snp import SnpOptions, verify_snp
from gpufence.attest.cvm.snp_report import REPORT_SIZE, TcbVersion, parse_snp_report
from tests.attest.cvm.conftest import SNP_AT, SNP_SAMPLES, snp_sample
from tests.attest.cvmfactory import AT, AmdTestPki, SnpFields, Tcb

STRUCTURAL = ("evidence.parse", "product", "cert_chain", "vcek.binding", "signature", "tcb")


@pytest.mark.parametrize("name", sorted(SNP_SAMPLES))
def test_real_sample_passes_every_structural_step(name: str) -> None:
    sample = snp_sample(name)
    result = verify_snp(sample.report, sample.certs, SnpOptions(SNP_AT))
    for step in STRUCTURAL:
        found = result.step(step)
        assert found is not None and found.status == "pass", (step, found)
    # Nothing to compare measurement / report data / minimum TCB with: incomplete, never pass.
    assert result.verdict in {"incomplete", "fail"}
    assert {"measurement", "report_data", "tcb.minimum"} <= set(result.unevaluated)


@pytest.mark.parametrize("name", sorted(SNP_SAMPLES))
def test_real_sample_passes_with_its_own_values_as_policy(name: str) -> None:
    sample = snp_sample(name)
    result = verify_snp(sample.report, sample.certs, sample.strict_options())
    assert result.verdict == "pass", [s for s in result.steps if s.status != "pass"]


def test_products_are_told_apart() -> None:
    genoa = snp_sample("trustee-azure-genoa")
    milan = snp_sample("trustee-milan")
    assert verify_snp(genoa.report, genoa.certs, SnpOptions(SNP_AT)).step("product").detail == (  # type: ignore[union-attr]
        "Genoa"
    )
    # A Genoa report presented with the Milan VCEK/ASK chain: product, binding, signature fail.
    crossed = verify_snp(genoa.report, milan.certs, SnpOptions(SNP_AT))
    assert crossed.verdict == "fail"
    assert crossed.step("signature").status == "fail"  # type: ignore[union-attr]
    # Declaring the wrong product selects the wrong pinned ARK.
    wrong = verify_snp(milan.report, milan.certs, SnpOptions(SNP_AT, product="Genoa"))
    assert wrong.step("product").status == "fail"  # type: ignore[union-attr]


def test_debug_policy_is_refused_unless_allowed() -> None:
    sample = snp_sample("go-sev-guest-milan")
    assert parse_snp_report(sample.report).policy.debug
    refused = verify_snp(sample.report, sample.certs, SnpOptions(SNP_AT))
    assert refused.step("policy.debug").status == "fail"  # type: ignore[union-attr]
    assert refused.verdict == "fail"
    allowed = verify_snp(sample.report, sample.certs, SnpOptions(SNP_AT, allow_debug=True))
    assert allowed.step("policy.debug").status == "pass"  # type: ignore[union-attr]


def test_measurement_allow_list_refuses_other_values() -> None:
    sample = snp_sample("trustee-milan")
    options = dataclasses.replace(sample.strict_options(), measurements=frozenset({bytes(48)}))
    result = verify_snp(sample.report, sample.certs, options)
    assert result.step("measurement").status == "fail"  # type: ignore[union-attr]
    assert result.verdict == "fail"


def test_report_data_mismatch_fails() -> None:
    sample = snp_sample("trustee-milan")
    options = dataclasses.replace(sample.strict_options(), expected_report_data=bytes(64))
    assert verify_snp(sample.report, sample.certs, options).verdict == "fail"


def test_minimum_tcb_and_smt() -> None:
    sample = snp_sample("trustee-milan")
    high = TcbVersion.from_u64(Tcb(bootloader=3, snp=9, microcode=115).u64())
    options = dataclasses.replace(sample.strict_options(), min_tcb=high)
    assert verify_snp(sample.report, sample.certs, options).step("tcb.minimum").status == "fail"  # type: ignore[union-attr]
    no_smt = dataclasses.replace(sample.strict_options(), allow_smt=False)
    assert verify_snp(sample.report, sample.certs, no_smt).step("policy.smt").status == "fail"  # type: ignore[union-attr]


def test_certificates_outside_their_validity_fail() -> None:
    sample = snp_sample("trustee-milan")
    late = dataclasses.replace(sample.strict_options(), at=datetime(2031, 1, 1, tzinfo=UTC))
    result = verify_snp(sample.report, sample.certs, late)
    assert result.step("cert_chain").status == "fail"  # type: ignore[union-attr]


def test_pinned_root_is_required() -> None:
    """A report signed by a test hierarchy is refused against the pinned AMD ARK."""
    pki = AmdTestPki()
    report = pki.report()
    pinned = verify_snp(report, pki.chain, SnpOptions(AT))
    assert pinned.step("cert_chain").status == "fail"  # type: ignore[union-attr]
    assert pinned.verdict == "fail"
    trusted = verify_snp(report, pki.chain, SnpOptions(AT, ark_override={"Milan": pki.ark}))
    assert trusted.step("cert_chain").status == "pass"  # type: ignore[union-attr]
    assert trusted.step("signature").status == "pass"  # type: ignore[union-attr]


def test_vcek_for_another_chip_or_tcb_is_refused(amd_pki: AmdTestPki) -> None:
    options = SnpOptions(AT, ark_override={"Milan": amd_pki.ark})
    other_chip = SnpFields(chip_id=bytes(64 * [7]), tcb=amd_pki.tcb)
    result = verify_snp(amd_pki.report(other_chip), amd_pki.chain, options)
    assert result.step("vcek.binding").status == "fail"  # type: ignore[union-attr]
    other_tcb = SnpFields(tcb=Tcb(snp=9))
    result = verify_snp(amd_pki.report(other_tcb), amd_pki.chain, options)
    assert result.step("vcek.binding").status == "fail"  # type: ignore[union-attr]


def test_migration_agent_policy(amd_pki: AmdTestPki) -> None:
    report = amd_pki.report(SnpFields(policy=0x30000 | 1 << 18))
    options = SnpOptions(AT, ark_override={"Milan": amd_pki.ark})
    assert verify_snp(report, amd_pki.chain, options).step("policy.migration_agent").status == (  # type: ignore[union-attr]
        "fail"
    )
    allowed = dataclasses.replace(options, allow_migration_agent=True)
    assert verify_snp(report, amd_pki.chain, allowed).step("policy.migration_agent").status == (  # type: ignore[union-attr]
        "pass"
    )


@pytest.mark.parametrize("size", [0, 1, 0x2A0, REPORT_SIZE - 1, REPORT_SIZE + 1])
def test_wrong_sizes_fail_to_parse(size: int) -> None:
    sample = snp_sample("trustee-milan")
    data = (sample.report + bytes(8))[:size]
    result = verify_snp(data, sample.certs, sample.strict_options())
    assert result.steps[0].name == "evidence.parse" and result.steps[0].status == "fail"
    assert result.verdict == "fail"


def test_unsupported_version_and_reserved_fields() -> None:
    sample = snp_sample("trustee-milan")
    for offset, value in ((0x00, 5), (0x34, 2), (0x4C, 1), (0x1F8, 1), (0x2A0 + 60, 1)):
        data = bytearray(sample.report)
        data[offset] = value
        assert verify_snp(bytes(data), sample.certs, SnpOptions(SNP_AT)).steps[0].status == "fail"


def test_waived_steps_are_named_in_the_result() -> None:
    sample = snp_sample("trustee-milan")
    waivers = frozenset({"measurement", "tcb.minimum", "report_data"})
    result = verify_snp(sample.report, sample.certs, SnpOptions(SNP_AT, waivers=waivers))
    assert result.verdict == "pass"
    assert result.as_json()["waived"] == sorted(waivers)


def test_tcb_above_current_fails(amd_pki: AmdTestPki) -> None:
    options = SnpOptions(AT, ark_override={"Milan": amd_pki.ark})
    newer = amd_pki.report(SnpFields(current_tcb=Tcb(microcode=200)))
    assert verify_snp(newer, amd_pki.chain, options).step("tcb").status == "pass"  # type: ignore[union-attr]
    older = amd_pki.report(SnpFields(current_tcb=Tcb(microcode=100)))
    assert verify_snp(older, amd_pki.chain, options).step("tcb").status == "fail"  # type: ignore[union-attr]
