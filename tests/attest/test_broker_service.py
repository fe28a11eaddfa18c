"""Broker decisions without HTTP: expiry with an injected clock, sealing, audit chain, config."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gpufence.attest.broker.audit_log import verify_audit_log
from gpufence.attest.broker.client import Requester
from gpufence.attest.broker.config import key_release_evidence, load_broker_config
from gpufence.attest.broker.crypto import TokenMac, TokenSigner, b64d, b64e, load_kek
from gpufence.attest.broker.database import AuditEntry
from gpufence.attest.broker.service import BrokerService, Refusal
from gpufence.errors import InputError

from .brokerkit import SECRET, SECRET_B, make_broker_kit
from .conftest import FROZEN


class Clock:
    def __init__(self) -> None:
        self.now = FROZEN.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(tmp_path: Path):  # type: ignore[no-untyped-def]
    kit = make_broker_kit(tmp_path)
    clock = Clock()
    svc = BrokerService.from_config(load_broker_config(kit.config), clock=clock)
    svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", clock.now))
    yield svc, kit, clock
    svc.close()


def _attest(svc: BrokerService, kit, requester: Requester, nonce: str | None = None, **kw) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Attest tenant A's GPUs for ``nonce`` (default: a fresh challenge); ``kw`` to attest()."""
    nonce = nonce or str(svc.challenge()["nonce"])
    return svc.attest(nonce, requester.public_pem, kit.evidence(requester.gpu_nonce(nonce)), **kw)


def test_release_flow_and_expiry(service) -> None:  # type: ignore[no-untyped-def]
    svc, kit, clock = service
    requester = Requester()
    token = str(_attest(svc, kit, requester)["token"])
    released = svc.release(f"Bearer {token}", "weights")
    assert requester.open(released) == SECRET
    assert SECRET not in str(released).encode()
    # An expired challenge.
    nonce = str(svc.challenge()["nonce"])
    clock.now += 61
    with pytest.raises(Refusal) as err:
        _attest(svc, kit, requester, nonce)
    assert err.value.code == "NONCE_EXPIRED"
    # An expired token.
    token = str(_attest(svc, kit, requester)["token"])
    clock.now += 200
    with pytest.raises(Refusal) as err:
        svc.release(f"Bearer {token}", "weights")
    assert err.value.code == "TOKEN_EXPIRED"


def test_secrets_are_sealed_at_rest(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, _, _ = service
    raw = (
        sqlite3.connect(tmp_path / "broker.db").execute("SELECT sealed FROM secrets").fetchone()[0]
    )
    assert SECRET not in bytes(raw)
    assert svc.db.get_secret("weights") == SECRET


def test_tokens_signed_by_another_key_or_alg_are_refused(service) -> None:  # type: ignore[no-untyped-def]
    svc, kit, _ = service
    requester = Requester()
    token = str(_attest(svc, kit, requester)["token"])
    header, payload, _ = token.split(".")
    claims = __import__("json").loads(b64d(payload))
    forged = TokenSigner.load(None).sign(claims)
    other_mac = TokenMac(bytes(range(1, 33))).sign(claims)
    signature = bytearray(b64d(token.split(".")[2]))
    signature[0] ^= 1
    flipped = f"{header}.{payload}.{b64e(bytes(signature))}"
    for bad in (forged, other_mac, flipped, f"{header}.{payload}.", "eyJhbGciOiJub25lIn0.e30."):
        with pytest.raises(Refusal) as err:
            svc.release(f"Bearer {bad}", "weights")
        assert err.value.code == "TOKEN_INVALID"
    assert requester.open(svc.release(f"Bearer {token}", "weights")) == SECRET


def test_es384_tokens_on_request(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path)
    kit.config.write_text(kit.config.read_text() + "  token_alg: es384\n")
    svc = BrokerService.from_config(load_broker_config(kit.config))
    try:
        svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", FROZEN.timestamp()))
        requester = Requester()
        token = str(_attest(svc, kit, requester)["token"])
        assert __import__("json").loads(b64d(token.split(".")[0]))["alg"] == "ES384"
        # Verifiable with the public key of broker.signing_key, unlike the default MAC.
        assert TokenSigner(kit.signing_key).verify_signature(token)["jti"]
        hs256 = TokenMac.from_kek(load_kek("file", path=tmp_path / "kek.bin", env=None, options={}))
        with pytest.raises(Refusal) as err:
            svc.release(
                f"Bearer {hs256.sign(TokenSigner(kit.signing_key).verify_signature(token))}",
                "weights",
            )
        assert err.value.code == "TOKEN_INVALID"
        assert requester.open(svc.release(f"Bearer {token}", "weights")) == SECRET
    finally:
        svc.close()


def test_audit_log_chain_detects_tampering(service) -> None:  # type: ignore[no-untyped-def]
    svc, kit, _ = service
    _attest(svc, kit, Requester())
    key = svc.db._key
    assert verify_audit_log(kit.audit_log, key).ok
    db = sqlite3.connect(kit.audit_log)
    db.execute("UPDATE audit SET decision = 'allowed' WHERE seq = 1")
    db.commit()
    result = verify_audit_log(kit.audit_log, key)
    assert not result.ok and result.first_bad_seq == 1
    db.execute("DELETE FROM audit WHERE seq = 1")
    db.commit()
    assert verify_audit_log(kit.audit_log, key).first_bad_seq == 2


def test_key_release_evidence_from_config(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path, token_ttl_s=3600)
    doc = key_release_evidence(load_broker_config(kit.config))
    assert doc.subject == "secrets/key-release"
    assert doc.observed["key_release.token_ttl_s"] == 3600
    assert doc.observed["key_release.policy_default_deny"] is True
    assert doc.observed["key_release.revocation_required"] is False
    assert doc.observed["key_release.kek_embedded_default"] is False
    assert doc.observed["key_release.custom_trust_anchors"] is True


def test_bad_config_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text("broker:\n  audience: x\n  nonce_ttl_s: -1\n  policy: {id: p, version: 1}\n")
    with pytest.raises(InputError) as err:
        load_broker_config(path)
    assert err.value.location is not None and err.value.location.line == 3


def _attest_b(svc: BrokerService, kit, requester: Requester, **kw) -> dict:  # type: ignore[no-untyped-def,type-arg]
    nonce = str(svc.challenge()["nonce"])
    evidence = kit.evidence(requester.gpu_nonce(nonce), tenant_b=True)
    return svc.attest(nonce, requester.public_pem, evidence, **kw)


def test_tenant_a_token_cannot_read_tenant_b_secret(service) -> None:  # type: ignore[no-untyped-def]
    svc, kit, clock = service
    svc.db.put_secret("tenantB-weights", SECRET_B, AuditEntry("secret.put", "stored", clock.now))
    requester = Requester()
    granted = _attest(svc, kit, requester)
    # Tenant A's GPUs pass A's policy, not B's (B's pins B's device identities).
    assert granted["resources"] == ["weights"]
    assert any("DEVICE_NOT_ALLOWED" in r for r in granted["denied"]["tenantB-weights"])
    with pytest.raises(Refusal) as err:
        svc.release(f"Bearer {granted['token']}", "tenantB-weights")
    assert err.value.code == "RESOURCE_NOT_GRANTED" and err.value.status == 403
    # Asking for B's resource explicitly does not help.
    with pytest.raises(Refusal) as err:
        _attest(svc, kit, requester, resources=["tenantB-weights"])
    assert err.value.code == "POLICY_DENIED" and "DEVICE_NOT_ALLOWED" in err.value.detail


def test_policy_is_enforced_per_resource(service) -> None:  # type: ignore[no-untyped-def]
    svc, kit, clock = service
    svc.db.put_secret("tenantB-weights", SECRET_B, AuditEntry("secret.put", "stored", clock.now))
    requester = Requester()
    # B's GPUs satisfy B's policy; A's default policy does not pin devices, so narrow by tenant.
    granted = _attest_b(svc, kit, requester, tenant="tenant-b")
    assert granted["resources"] == ["tenantB-weights"]
    assert "TENANT_MISMATCH" in granted["denied"]["weights"][0]
    token = f"Bearer {granted['token']}"
    with pytest.raises(Refusal) as err:
        svc.release(token, "weights")
    assert err.value.code == "RESOURCE_NOT_GRANTED"
    assert requester.open(svc.release(token, "tenantB-weights")) == SECRET_B
    # The decision names tenant, policy and waivers in the log.
    attest = [e for e in svc.db.entries() if e["event"] == "attest"][-1]
    assert attest["detail"]["granted"]["tenantB-weights"]["tenant"] == "tenant-b"
    assert "GPU-0:revocation" in attest["detail"]["waived"]
    release = [e for e in svc.db.entries() if e["event"] == "release"][-1]
    assert release["detail"]["tenant"] == "tenant-b"


def test_undeclared_resource_is_never_granted(service) -> None:  # type: ignore[no-untyped-def]
    svc, kit, clock = service
    svc.db.put_secret(
        "stray", SECRET, AuditEntry("secret.put", "stored", clock.now)
    )  # in the database, not in the config
    requester = Requester()
    with pytest.raises(Refusal) as err:
        _attest(svc, kit, requester, resources=["stray"])
    assert err.value.code == "POLICY_DENIED" and "RESOURCE_UNKNOWN" in err.value.detail
    token = str(_attest(svc, kit, requester)["token"])
    with pytest.raises(Refusal) as err:
        svc.release(f"Bearer {token}", "stray")
    assert err.value.code == "RESOURCE_NOT_GRANTED"


def test_policy_change_invalidates_tokens(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path)
    clock = Clock()
    svc = BrokerService.from_config(load_broker_config(kit.config), clock=clock)
    svc.db.put_secret("weights", SECRET, AuditEntry("secret.put", "stored", clock.now))
    token = str(_attest(svc, kit, Requester())["token"])
    svc.close()
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text().replace("version: 3", "version: 4"))
    svc = BrokerService.from_config(load_broker_config(kit.config), clock=clock)
    try:
        with pytest.raises(Refusal) as err:
            svc.release(f"Bearer {token}", "weights")
        assert err.value.code == "TOKEN_INVALID"
    finally:
        svc.close()


def test_cvm_requirement_fails_closed(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text() + "  cvm: {required: true, kinds: [sev-snp, tdx]}\n")
    clock = Clock()
    svc = BrokerService.from_config(load_broker_config(kit.config), clock=clock)
    try:
        requester = Requester()
        for cvm in (None, {"kind": "tdx", "quote": "AAAA"}):
            with pytest.raises(Refusal) as err:
                _attest(svc, kit, requester, resources=["weights"], cvm=cvm)
            assert err.value.code == "POLICY_DENIED"
            # Fail closed: no evidence, or evidence that is not a quote (composite attestation
            # itself is tested in test_broker_cvm.py).
            assert (
                "CVM_EVIDENCE_MISSING" in err.value.detail
                or "CVM_EVIDENCE_UNREADABLE" in err.value.detail
            )
    finally:
        svc.close()


def test_resource_config_errors_name_the_line(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path)
    text = kit.config.read_text().replace("policy: tenant-b}", "policy: nope}")
    kit.config.write_text(text)
    with pytest.raises(InputError) as err:
        load_broker_config(kit.config)
    assert "no policy named 'nope'" in err.value.message
    assert err.value.location is not None and err.value.location.line is not None


def test_key_release_evidence_names_resources(tmp_path: Path) -> None:
    kit = make_broker_kit(tmp_path)
    line = "    weights: {tenant: tenant-a}\n"
    text = kit.config.read_text().replace(line, line + "    orphan: {tenant: t}\n")
    kit.config.write_text(text.replace("  policy: policy.yaml\n", ""))
    doc = key_release_evidence(load_broker_config(kit.config))
    assert doc.observed["key_release.resources_declared"] is True
    assert doc.observed["key_release.resources_without_policy"] == ["orphan", "weights"]
    resources = doc.observed["key_release.resources"]
    assert isinstance(resources, dict) and resources["tenantB-weights"]["tenant"] == "tenant-b"


def test_expired_challenges_are_purged_and_stay_refused(service) -> None:  # type: ignore[no-untyped-def]
    """Challenges cost nothing to ask for: the table must not keep every one ever issued.
    A nonce purged after it expired is still refused (unknown instead of expired)."""
    svc, kit, clock = service
    requester = Requester()
    old = [str(svc.challenge()["nonce"]) for _ in range(50)]
    with svc.db._read() as cur:
        before = cur.execute("SELECT count(*) FROM challenges").fetchone()[0]
    assert before >= 50
    clock.now += 2 * 3600  # past expiry + the hour a spent challenge is kept
    fresh = str(svc.challenge()["nonce"])
    with svc.db._read() as cur:
        after = cur.execute("SELECT count(*) FROM challenges").fetchone()[0]
    assert after == 1
    with pytest.raises(Refusal) as err:
        _attest(svc, kit, requester, old[0])
    assert err.value.code in ("NONCE_UNKNOWN", "NONCE_EXPIRED")
    assert _attest(svc, kit, requester, fresh)
