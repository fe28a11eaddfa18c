"""Every real sample: signature, chain, nonce, FWID, RIMs; every shipped negative case fails at
the right named step."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence.attest.certs import device_root, fingerprint, load_pem_chain, rim_root, verify_chain
from gpufence.attest.device_reports import load_evidence_file, load_report_pair
from gpufence.attest.rim import check_rim
from gpufence.attest.verify import VerifyOptions, verify_device, verify_set

from .conftest import FROZEN, RIM_ERA, SAMPLE_NONCE

SWITCH_RIM = "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml"


def _statuses(result: object) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}  # type: ignore[attr-defined]


def test_pinned_roots_match_the_roots_readme_and_nvidia_files(att: Path) -> None:
    certs = att / "nvtrust-local-gpu-verifier-2.7.3" / "certs"
    assert fingerprint(device_root()) == fingerprint(
        load_pem_chain((certs / "verifier_device_root.pem").read_bytes())[0]
    )
    assert fingerprint(rim_root()) == fingerprint(
        load_pem_chain((certs / "verifier_RIM_root.pem").read_bytes())[0]
    )
    readme = (Path(__file__).parents[2] / "src/gpufence/attest/roots/README.md").read_text()
    for cert in (device_root(), rim_root()):
        colon = ":".join(fingerprint(cert)[i : i + 2] for i in range(0, 64, 2)).upper()
        assert colon in readme


PAIRS = [
    (
        "nvtrust-local-gpu-verifier-2.7.3/samples/hopperAttestationReport.txt",
        "nvtrust-local-gpu-verifier-2.7.3/samples/hopperCertChain.txt",
        True,
    ),
    (
        "trustee-nvidia-verifier/hopperAttestationReport.txt",
        "trustee-nvidia-verifier/hopper_cert_chain_case1.txt",
        True,
    ),
    (
        "nvidia-attestation-sdk/unit-tests-testdata/hopperAttestationReport.txt",
        "nvidia-attestation-sdk/unit-tests-testdata/hopperCertChain.txt",
        True,
    ),
    (
        "nvidia-attestation-sdk/unit-tests-testdata/sample_attestation_data/gpu/hopperAttestationReport.txt",
        "nvidia-attestation-sdk/unit-tests-testdata/sample_attestation_data/gpu/hopperCertChain.txt",
        False,
    ),
    (
        "nvidia-attestation-sdk/unit-tests-testdata/sample_attestation_data/gpu/hopperAttestationReportExpired.txt",
        "nvidia-attestation-sdk/unit-tests-testdata/sample_attestation_data/gpu/hopperCertChainExpired.txt",
        True,
    ),
    (
        "nvidia-attestation-sdk/unit-tests-testdata/switchAttestationReport.txt",
        "nvidia-attestation-sdk/unit-tests-testdata/switchCertChain.txt",
        False,
    ),
]


@pytest.mark.parametrize(("report", "chain", "has_fwid"), PAIRS)
def test_real_pairs_pass_signature_chain_and_fwid(
    att: Path, report: str, chain: str, has_fwid: bool
) -> None:
    evidence = load_report_pair(att / report, att / chain)
    result = verify_device(evidence, VerifyOptions(FROZEN, evidence.report[4:36]))
    steps = _statuses(result)
    assert steps["evidence.parse"] == steps["cert_chain"] == steps["signature"] == "pass"
    assert steps["nonce"] == "pass" and steps["arch"] == "pass"
    assert steps["fwid"] == ("pass" if has_fwid else "not_evaluated")
    assert steps["revocation"] == "not_evaluated"
    assert "revocation not checked" in result.step("revocation").detail  # type: ignore[union-attr]
    # Strict by default: revocation, RIMs and measurements were not checked.
    assert result.verdict == "incomplete"
    assert result.judge(("revocation", "rim.*", "measurements", "fwid")) == "pass"
    assert result.judge(("revocation", "rim.*", "fwid")) == "incomplete"


def test_wrong_nonce_fails_the_nonce_step(att: Path) -> None:
    report, chain, _ = PAIRS[0]
    result = verify_device(
        load_report_pair(att / report, att / chain), VerifyOptions(FROZEN, bytes(32))
    )
    assert _statuses(result)["nonce"] == "fail" and result.verdict == "fail"


def test_full_positive_nvswitch_case_with_its_rim(unit: Path) -> None:
    evidence = load_report_pair(unit / "switchAttestationReport.txt", unit / "switchCertChain.txt")
    rim = check_rim((unit / SWITCH_RIM).read_bytes(), FROZEN)
    result = verify_device(evidence, VerifyOptions(FROZEN, SAMPLE_NONCE), [rim], name="SWITCH-0")
    steps = _statuses(result)
    for name in (
        "rim.switch_bios.signature",
        "rim.switch_bios.chain",
        "rim.switch_bios.version",
        "measurements",
        "signature",
        "cert_chain",
        "nonce",
    ):
        assert steps[name] == "pass", name
    assert result.comparison is not None and result.comparison.compared == 31
    # fwid: NVSwitch reports carry none; revocation: offline.
    assert result.verdict == "incomplete"
    assert result.judge(("revocation", "rim.*.revocation", "fwid")) == "pass"


def test_hopper_vbios_rim_inside_its_validity(att: Path, unit: Path) -> None:
    gpu = unit / "sample_attestation_data" / "gpu"
    evidence = load_report_pair(gpu / "hopperAttestationReport.txt", gpu / "hopperCertChain.txt")
    vbios = check_rim(
        (
            att / "nvtrust-local-gpu-verifier-2.7.3/samples/1010_0200_882_96005E0001_PROD.swidtag"
        ).read_bytes(),
        RIM_ERA,
    )
    result = verify_device(evidence, VerifyOptions(RIM_ERA), [vbios])
    steps = _statuses(result)
    assert (
        steps["rim.vbios.signature"]
        == steps["rim.vbios.chain"]
        == steps["rim.vbios.version"]
        == "pass"
    )
    assert (
        result.comparison is not None and result.comparison.compared == 12 and result.comparison.ok
    )
    # The driver RIM is missing: 12/12 VBIOS matches are not a complete appraisal.
    assert steps["rim.driver"] == "not_evaluated" and steps["measurements"] == "not_evaluated"
    # At the data's clock the same RIM's signer has expired.
    late = verify_device(evidence, VerifyOptions(FROZEN), [check_rim(vbios_bytes(att), FROZEN)])
    assert _statuses(late)["rim.vbios.chain"] == "fail"
    assert "expired" in late.step("rim.vbios.chain").detail  # type: ignore[union-attr]


def vbios_bytes(att: Path) -> bytes:
    return (
        att / "nvtrust-local-gpu-verifier-2.7.3/samples/1010_0200_882_96005E0001_PROD.swidtag"
    ).read_bytes()


@pytest.mark.parametrize(
    ("report", "chain"),
    [
        (
            "sample_attestation_data/gpu/hopperAttestationReportInvalidSignature.txt",
            "sample_attestation_data/gpu/hopperCertChain.txt",
        ),
        (
            "sample_attestation_data/switch/switchAttestationReportInvalidSignature.txt",
            "sample_attestation_data/switch/switchCertChain.txt",
        ),
    ],
)
def test_invalid_signature_samples_fail_the_signature_step(
    unit: Path, report: str, chain: str
) -> None:
    result = verify_device(load_report_pair(unit / report, unit / chain), VerifyOptions(FROZEN))
    assert _statuses(result)["signature"] == "fail" and result.verdict == "fail"


@pytest.mark.parametrize(
    ("rim", "at", "step", "words"),
    [
        ("incorrect_signature_driver_rim.xml", FROZEN, "signature", "does not verify"),
        ("incorrect_cert_chain_driver_rim.xml", FROZEN, "chain", "not the pinned"),
        ("sample_rims/NV_GPU_DRIVER_GH100_570.124.03_expired.xml", FROZEN, "chain", "expired"),
        (
            "sample_rims/NV_SWITCH_BIOS_5612_0002_890_9610550001_invalid_signature.xml",
            FROZEN,
            "signature",
            "does not verify",
        ),
        (
            "sample_rims/NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml",
            RIM_ERA,
            "signature",
            "Digest mismatch",
        ),
    ],
)
def test_shipped_negative_rims_fail_the_named_step(
    unit: Path, rim: str, at: object, step: str, words: str
) -> None:
    check = check_rim((unit / rim).read_bytes(), at)  # type: ignore[arg-type]
    if step == "signature":
        assert not check.signature_ok and words in check.signature_detail
        assert check.manifest is None  # nothing is read from an unsigned document
    else:
        assert not check.chain.ok and words in check.chain.detail


def test_incorrect_rim_root_is_not_a_trust_anchor(unit: Path) -> None:
    wrong_root = load_pem_chain((unit / "incorrect_rim_root.crt").read_bytes())[0]
    check = check_rim((unit / SWITCH_RIM).read_bytes(), FROZEN, root_ca=wrong_root)
    assert not check.chain.ok


def test_vbios_measurement_mismatch_fails_measurements(unit: Path) -> None:
    gpu = unit / "sample_attestation_data" / "gpu"
    evidence = load_report_pair(gpu / "hopperAttestationReport.txt", gpu / "hopperCertChain.txt")
    rim = check_rim(
        (
            unit / "sample_rims/NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml"
        ).read_bytes(),
        RIM_ERA,
    )
    assert rim.signature_ok and rim.chain.ok  # signed, so the comparison is what must fail
    result = verify_device(evidence, VerifyOptions(RIM_ERA), [rim])
    assert _statuses(result)["measurements"] == "fail" and result.verdict == "fail"
    assert result.comparison is not None and result.comparison.mismatches


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("case2", "CA, not a device leaf"),
        ("case3", "no certificate in the chain signed"),
        ("case4", "CA, not a device leaf"),
    ],
)
def test_trustee_broken_chains(att: Path, case: str, words: str) -> None:
    certs = load_pem_chain(
        (att / f"trustee-nvidia-verifier/hopper_cert_chain_{case}.txt").read_bytes()
    )
    result = verify_chain(certs, device_root(), FROZEN, expected_length=5)
    assert result.status == "invalid" and words in result.detail


def test_multi_gpu_set_and_duplicate_switches(att: Path) -> None:
    folder = att / "nvidia-attestation-sdk/common-test-data/serialized_test_evidence"
    gpus = verify_set(
        load_evidence_file(folder / "multi_gpu_hopper.json"),
        VerifyOptions(FROZEN, expected_counts={"gpu": 4}),
    )
    assert gpus.judge(("nonce", "revocation", "rim.*", "measurements")) == "pass"
    assert gpus.verdict == "incomplete" and {s.name: s.status for s in gpus.steps} == {
        "set.nonce": "pass",
        "set.unique": "pass",
        "set.count": "pass",
    }
    wrong_count = verify_set(
        load_evidence_file(folder / "multi_gpu_hopper.json"),
        VerifyOptions(FROZEN, expected_counts={"gpu": 8, "nvswitch": 4}),
    )
    assert {s.name: s.status for s in wrong_count.steps}["set.count"] == "fail"
    # NVAT's multi-switch file repeats one switch's evidence four times: a set must refuse that.
    switches = verify_set(
        load_evidence_file(folder / "multi_switch_ls10.json"), VerifyOptions(FROZEN)
    )
    assert {s.name: s.status for s in switches.steps}["set.unique"] == "fail"
    assert switches.verdict == "fail"
