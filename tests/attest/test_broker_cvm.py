"""Composite CPU + GPU attestation through the broker: a resource that requires a CVM is
released only when an SEV-SNP report verifies and binds the broker nonce, the requester's key
and the GPU evidence; GPU evidence replayed from another CVM is refused."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufence.attest.broker.client import Requester
from gpufence.attest.broker.config import load_broker_config
from gpufence.attest.broker.database import AuditEntry
from gpufence.attest.broker.service import BrokerService, Refusal

from .brokerkit import SECRET, BrokerKit, make_broker_kit
from .cvmfactory import AmdTestPki, IntelTestPki, SnpFields
from .test_broker_service import Clock

MEASUREMENT = bytes(range(48))


@pytest.fixture(scope="module")
def pki() -> AmdTestPki:
    return AmdTestPki()


@pytest.fixture
def broker(tmp_path: Path, pki: AmdTestPki):  # type: ignore[no-untyped-def]
    kit = make_broker_kit(tmp_path)
    (tmp_path / "ark.pem").write_bytes(pki.ark.public_bytes(Encoding.PEM))
    kit.config.write_text(
        kit.config.read_text().replace(
            "rim_root: rim-root.pem}", "rim_root: rim-root.pem, amd_ark_milan: ark.pem}"
        )
    )
    policy = tmp_path / "policy.yaml"
    text = policy.read_text().replace(
        "accept_not_evaluated: [revocation, 'rim.*.revocation']",
        "accept_not_evaluated: [revocation, 'rim.*.revocation', cvm.tcb.minimum]",
    )
    requirement = f"{{required: true, kinds: [sev-snp], snp_measurements: ['{MEASUREMENT.hex()}']}}"
    policy.write_text(text + f"  cvm: {requirement}\n")
    clock = Clock()
    svc = BrokerService.from_config(load_broker_config(kit.config), clock=clock)
    svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", clock.now))
    yield svc, kit
    svc.close()


def _cvm(pki: AmdTestPki, report_data: bytes, **fields: object) -> dict[str, object]:
    report = pki.report(SnpFields(report_data=report_data, measurement=MEASUREMENT, **fields))  # type: ignore[arg-type]
    return {
        "kind": "sev-snp",
        "report": base64.b64encode(report).decode(),
        "certificates": [
            base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in (pki.vcek, pki.ask)
        ],
    }


def _request(
    svc: BrokerService, kit: BrokerKit, requester: Requester
) -> tuple[str, list[dict[str, str]]]:
    nonce = str(svc.challenge()["nonce"])
    return nonce, kit.evidence(requester.gpu_nonce(nonce))


def _refusal(svc: BrokerService, requester: Requester, nonce: str, gpu: object, cvm: object) -> str:
    with pytest.raises(Refusal) as err:
        svc.attest(nonce, requester.public_pem, gpu, resources=["weights"], cvm=cvm)  # type: ignore[arg-type]
    assert err.value.code == "POLICY_DENIED", err.value.detail
    return err.value.detail


def test_bound_cvm_report_releases_the_secret(broker, pki: AmdTestPki) -> None:  # type: ignore[no-untyped-def]
    svc, kit = broker
    requester = Requester()
    nonce, gpu = _request(svc, kit, requester)
    cvm = _cvm(pki, requester.cvm_report_data(nonce, gpu))
    answer = svc.attest(nonce, requester.public_pem, gpu, resources=["weights"], cvm=cvm)
    assert answer["resources"] == ["weights"]
    assert "cvm:tcb.minimum" in answer["waived"]  # the policy's waiver, named in the answer
    entries = sqlite3.connect(kit.audit_log).execute("SELECT * FROM audit").fetchall()
    assert any(MEASUREMENT.hex() in str(row) and "cvm:tcb.minimum" in str(row) for row in entries)
    released = svc.release(f"Bearer {answer['token']}", "weights")
    assert requester.open(released) == SECRET


def test_without_cvm_evidence_nothing_is_released(broker) -> None:  # type: ignore[no-untyped-def]
    svc, kit = broker
    requester = Requester()
    nonce, gpu = _request(svc, kit, requester)
    assert "CVM_EVIDENCE_MISSING" in _refusal(svc, requester, nonce, gpu, None)


def test_gpu_evidence_relayed_into_another_cvm_is_refused(broker, pki: AmdTestPki) -> None:  # type: ignore[no-untyped-def]
    """CVM B sends GPU evidence made for its request by a GPU it does not own (relayed from CVM
    A), with its own genuine SNP report: B's report binds the GPU evidence B really has."""
    svc, kit = broker
    requester_b = Requester()
    nonce, relayed_gpu = _request(svc, kit, requester_b)
    own_gpu = kit.evidence(requester_b.gpu_nonce(nonce), tenant_b=True)
    cvm_b = _cvm(pki, requester_b.cvm_report_data(nonce, own_gpu))
    detail = _refusal(svc, requester_b, nonce, relayed_gpu, cvm_b)
    assert "CVM_BINDING_MISMATCH" in detail


def test_another_cvms_report_is_refused(broker, pki: AmdTestPki) -> None:  # type: ignore[no-untyped-def]
    """A genuine, bound report of CVM A, replayed with B's request, binds A's nonce and key."""
    svc, kit = broker
    requester_a, requester_b = Requester(), Requester()
    nonce_a, gpu_a = _request(svc, kit, requester_a)
    cvm_a = _cvm(pki, requester_a.cvm_report_data(nonce_a, gpu_a))
    svc.attest(nonce_a, requester_a.public_pem, gpu_a, resources=["weights"], cvm=cvm_a)
    nonce_b, gpu_b = _request(svc, kit, requester_b)
    assert "CVM_BINDING_MISMATCH" in _refusal(svc, requester_b, nonce_b, gpu_b, cvm_a)


def test_debug_guest_or_unlisted_measurement_is_refused(broker, pki: AmdTestPki) -> None:  # type: ignore[no-untyped-def]
    svc, kit = broker
    requester = Requester()
    nonce, gpu = _request(svc, kit, requester)
    debug = _cvm(pki, requester.cvm_report_data(nonce, gpu), policy=0x30000 | 1 << 19)
    detail = _refusal(svc, requester, nonce, gpu, debug)
    assert "CVM_EVIDENCE_REJECTED" in detail and "cvm.policy.debug" in detail
    nonce, gpu = _request(svc, kit, requester)
    cvm = _cvm(pki, requester.cvm_report_data(nonce, gpu))
    unlisted = SnpFields(report_data=requester.cvm_report_data(nonce, gpu), measurement=bytes(48))
    cvm["report"] = base64.b64encode(pki.report(unlisted)).decode()
    detail = _refusal(svc, requester, nonce, gpu, cvm)
    assert "CVM_EVIDENCE_REJECTED" in detail and "cvm.measurement" in detail


@pytest.mark.parametrize(
    "cvm",
    [
        {"kind": "tdx", "quote": "AAAA"},
        {"kind": "sev-snp", "report": "AAAA", "certificates": ["AAAA"]},
        {"kind": "nitro"},
        {},
    ],
)
def test_unreadable_or_disallowed_cvm_evidence_is_refused(broker, cvm: object) -> None:  # type: ignore[no-untyped-def]
    svc, kit = broker
    requester = Requester()
    nonce, gpu = _request(svc, kit, requester)
    detail = _refusal(svc, requester, nonce, gpu, cvm)
    assert "CVM_EVIDENCE_UNREADABLE" in detail or "CVM_KIND_NOT_ALLOWED" in detail


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cvm=st.fixed_dictionaries(
        {"kind": st.sampled_from(["sev-snp", "tdx", "x"])},
        optional={
            "report": _JSON | st.binary(max_size=1300).map(lambda b: base64.b64encode(b).decode()),
            "quote": _JSON,
            "certificates": _JSON,
        },
    )
)
def test_any_cvm_object_is_a_reasoned_refusal(broker, cvm: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    svc, kit = broker
    requester = Requester()
    nonce, gpu = _request(svc, kit, requester)
    detail = _refusal(svc, requester, nonce, gpu, cvm)
    assert "CVM_" in detail


def test_tdx_cvm_through_the_broker(tmp_path: Path) -> None:
    """A TDX quote (test PCK hierarchy as intel_sgx_root) bound to the request releases; the
    collateral steps are waived by name because this broker has no collateral files."""
    intel = IntelTestPki()
    kit = make_broker_kit(tmp_path)
    (tmp_path / "intel-root.pem").write_bytes(intel.root.public_bytes(Encoding.PEM))
    kit.config.write_text(
        kit.config.read_text().replace(
            "rim_root: rim-root.pem}", "rim_root: rim-root.pem, intel_sgx_root: intel-root.pem}"
        )
    )
    rtmrs = ", ".join(f"cvm.rtmr{i}" for i in range(4))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        policy.read_text().replace(
            "accept_not_evaluated: [revocation, 'rim.*.revocation']",
            f"accept_not_evaluated: [revocation, 'rim.*.revocation', 'cvm.collateral.*', {rtmrs}]",
        )
        + f"  cvm: {{required: true, kinds: [tdx], tdx_mrtds: ['{MEASUREMENT.hex()}']}}\n"
    )
    clock = Clock()
    svc = BrokerService.from_config(load_broker_config(kit.config), clock=clock)
    try:
        svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", clock.now))
        requester = Requester()
        nonce, gpu = _request(svc, kit, requester)
        quote = intel.quote(report_data=requester.cvm_report_data(nonce, gpu), mrtd=MEASUREMENT)
        cvm = {"kind": "tdx", "quote": base64.b64encode(quote).decode()}
        answer = svc.attest(nonce, requester.public_pem, gpu, resources=["weights"], cvm=cvm)
        assert requester.open(svc.release(f"Bearer {answer['token']}", "weights")) == SECRET
        assert "cvm:collateral.tcb_info" in answer["waived"]
        nonce, gpu = _request(svc, kit, requester)
        other = intel.quote(report_data=bytes(64), mrtd=MEASUREMENT)
        cvm = {"kind": "tdx", "quote": base64.b64encode(other).decode()}
        assert "CVM_BINDING_MISMATCH" in _refusal(svc, requester, nonce, gpu, cvm)
    finally:
        svc.close()
