"""OCSP against a test responder (no network), and the default-deny policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from gpufence.attest.device_reports import DeviceEvidence, load_report_pair
from gpufence.attest.ocsp import OcspChecker
from gpufence.attest.policy import Policy, evaluate, load_policy
from gpufence.attest.rim import check_rim
from gpufence.attest.verify import VerifyOptions, verify_set

from . import devicefactory as f
from .conftest import FROZEN, SAMPLE_NONCE


class Responder:
    """Answers OCSP requests for one device chain; tests tune its behaviour."""

    def __init__(self, device: f.TestDevice, keys: dict[str, object]) -> None:
        self.device = device
        self.keys = keys
        self.status = ocsp.OCSPCertStatus.GOOD
        self.reason: x509.ReasonFlags | None = None
        self.echo_nonce = True
        self.sign_with_wrong_key = False
        self.calls = 0

    def __call__(self, url: str, body: bytes) -> bytes:
        assert url == "http://ocsp.test/"
        self.calls += 1
        request = ocsp.load_der_ocsp_request(body)
        chain = self.device.chain
        cert = next(c for c in chain if c.serial_number == request.serial_number)
        issuer = chain[chain.index(cert) + 1]
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=issuer,
            algorithm=hashes.SHA384(),
            cert_status=self.status,
            this_update=FROZEN - timedelta(hours=1),
            next_update=FROZEN + timedelta(days=1),
            revocation_time=FROZEN - timedelta(days=1)
            if self.status == ocsp.OCSPCertStatus.REVOKED
            else None,
            revocation_reason=self.reason,
        )
        signer_cert = issuer
        if self.sign_with_wrong_key:
            # A responder the issuer never delegated to, presenting its own certificate.
            signer_cert = f._cert(
                "Rogue OCSP responder", self.keys["wrong"], None, self.keys["wrong"], ca=False
            )  # type: ignore[arg-type]
            builder = builder.certificates([signer_cert])
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if self.echo_nonce:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
            builder = builder.add_extension(nonce, critical=False)
        key = (
            self.keys["wrong"]
            if self.sign_with_wrong_key
            else self.keys[issuer.subject.rfc4514_string()]
        )
        return builder.sign(key, hashes.SHA384()).public_bytes(Encoding.DER)  # type: ignore[arg-type]


@pytest.fixture
def signed_device() -> tuple[f.TestDevice, Responder]:
    # Rebuild a chain whose keys the responder knows (issuer key signs the OCSP answers).
    from cryptography.hazmat.primitives.asymmetric import ec

    root, root_key = f.make_root("Test Device Identity CA")
    keys = [ec.generate_private_key(ec.SECP384R1()) for _ in range(4)]
    identity = f._cert("NVIDIA GH100 Identity", keys[0], root, root_key, ca=True)
    ica = f._cert("NVIDIA GH100 Provisioner ICA 1", keys[1], identity, keys[0], ca=True)
    brom = f._cert("GH100 A01 GSP BROM", keys[2], ica, keys[1], ca=True)
    leaf = f._cert(
        "GH100 A01 GSP FMC LF",
        keys[3],
        brom,
        keys[2],
        ca=False,
        extra=[
            (
                x509.UnrecognizedExtension(
                    f.DICE_OID, f.composite_device_id(keys[3].public_key(), b"\x01" * 48)
                ),
                False,
            )
        ],
    )
    device = f.TestDevice(root, [leaf, brom, ica, identity, root], keys[3], b"\x01" * 48, "HOPPER")
    names = {
        c.subject.rfc4514_string(): k
        for c, k in zip([root, identity, ica, brom], [root_key, *keys[:3]], strict=True)
    }
    names["wrong"] = ec.generate_private_key(ec.SECP384R1())
    return device, Responder(device, names)


def _revocation(device: f.TestDevice, responder: Responder, **kwargs: object) -> str:
    nonce = b"\x05" * 32
    report = f.build_report(device, nonce, f.measurements())
    checker = OcspChecker(responder, url="http://ocsp.test/", **kwargs)  # type: ignore[arg-type]
    result = verify_set(
        [DeviceEvidence(report, tuple(device.chain), "HOPPER")],
        VerifyOptions(FROZEN, nonce, checker, device_root=device.root),
    )
    step = result.devices[0].step("revocation")
    assert step is not None
    return step.status + ": " + step.detail


def test_ocsp_good_checks_brom_ica_identity(signed_device: tuple[f.TestDevice, Responder]) -> None:
    device, responder = signed_device
    assert _revocation(device, responder).startswith("pass")
    assert responder.calls == 3  # BROM, Provisioner ICA, Identity (not the leaf, not the root)


@pytest.mark.parametrize(
    ("tweak", "expected"),
    [
        (
            {"status": ocsp.OCSPCertStatus.REVOKED, "reason": x509.ReasonFlags.key_compromise},
            "revoked (keyCompromise)",
        ),
        ({"echo_nonce": False}, "nonce does not match"),
        ({"sign_with_wrong_key": True}, "not valid"),
        (
            {"status": ocsp.OCSPCertStatus.REVOKED, "reason": x509.ReasonFlags.certificate_hold},
            "revoked (certificateHold)",
        ),
    ],
)
def test_ocsp_failures(
    signed_device: tuple[f.TestDevice, Responder], tweak: dict[str, object], expected: str
) -> None:
    device, responder = signed_device
    for key, value in tweak.items():
        setattr(responder, key, value)
    outcome = _revocation(device, responder)
    assert outcome.startswith("fail") and expected in outcome


def test_ocsp_hold_allowed_only_on_request(signed_device: tuple[f.TestDevice, Responder]) -> None:
    device, responder = signed_device
    responder.status, responder.reason = (
        ocsp.OCSPCertStatus.REVOKED,
        x509.ReasonFlags.certificate_hold,
    )
    assert _revocation(device, responder, allow_hold=True).startswith("pass")


def test_ocsp_transport_failure_is_unknown(signed_device: tuple[f.TestDevice, Responder]) -> None:
    device, _ = signed_device

    def down(url: str, body: bytes) -> bytes:
        raise OSError("connection refused")

    assert "request failed" in _revocation(device, down)  # type: ignore[arg-type]


def _switch_result(unit: Path) -> object:
    evidence = load_report_pair(unit / "switchAttestationReport.txt", unit / "switchCertChain.txt")
    rim = check_rim(
        (unit / "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml").read_bytes(), FROZEN
    )
    return verify_set([evidence], VerifyOptions(FROZEN, SAMPLE_NONCE), [rim])


def test_policy_is_default_deny_and_names_reasons(unit: Path) -> None:
    result = _switch_result(unit)
    strict = evaluate(Policy(id="p", version=1), result)  # type: ignore[arg-type]
    assert not strict.allowed
    assert {r.code for r in strict.reasons} == {"STEP_NOT_EVALUATED"}  # fwid + two revocations
    offline = Policy(
        id="p", version=1, accept_not_evaluated=("revocation", "rim.*.revocation", "fwid")
    )
    decision = evaluate(offline, result)  # type: ignore[arg-type]
    assert decision.allowed, decision.reasons
    assert decision.policy_hash == offline.digest() != Policy(id="p", version=2).digest()
    pinned = offline.model_copy(
        update={"allowed_switch_bios_versions": ("96.10.99.00.01",), "devices": {"gpu": 1}}
    )
    codes = {r.code for r in evaluate(pinned, result).reasons}  # type: ignore[arg-type]
    assert codes == {"BIOS_NOT_ALLOWED", "DEVICE_COUNT"}
    claims = offline.model_copy(
        update={
            "required_claims": {
                "x-nvidia-switch-attestation-report-cert-chain": {
                    "x-nvidia-cert-ocsp-status": "good"
                }
            }
        }
    )
    assert {r.code for r in evaluate(claims, result).reasons} == {"CLAIM_MISMATCH"}  # type: ignore[arg-type]


def test_nvidia_rego_policy_via_regopy(att: Path, unit: Path) -> None:
    pytest.importorskip("regopy", reason="regopy not installed (optional: pip install regopy)")
    base = Policy(
        id="p", version=1, accept_not_evaluated=("revocation", "rim.*.revocation", "fwid")
    )
    result = _switch_result(unit)
    sdk = att / "nvidia-attestation-sdk"
    switch_rego = (sdk / "common-test-data/switch_relying_party_policy.rego").read_text()
    assert evaluate(base.model_copy(update={"rego": switch_rego}), result).allowed  # type: ignore[arg-type]
    gpu_rego = (sdk / "common-test-data/rp-policy-permissive.rego").read_text()
    denied = evaluate(base.model_copy(update={"rego": gpu_rego}), result)  # type: ignore[arg-type]
    assert [r.code for r in denied.reasons] == ["REGO_DENIED"]
    # NVIDIA's strict example needs OCSP "good": offline claims say "not-checked", so it refuses.
    strict = (
        sdk / "relying_party_policy_examples/allow_gpu_measurement_mismatch_index_7.rego"
    ).read_text()
    assert not evaluate(base.model_copy(update={"rego": strict}), result).allowed  # type: ignore[arg-type]


def test_policy_file_errors_name_line(tmp_path: Path) -> None:
    from gpufence.errors import InputError

    path = tmp_path / "policy.yaml"
    path.write_text("policy:\n  id: p\n  version: 0\n")
    with pytest.raises(InputError) as err:
        load_policy(path)
    assert err.value.location is not None and err.value.location.line == 3
