"""Data and secrets controls: weights at rest, key management, key release."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import joined, not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.snapshot import Snapshot

_NIST_KM = "https://csrc.nist.gov/pubs/sp/800/57/pt1/r5/final"
_NIST_STORAGE = "https://csrc.nist.gov/pubs/sp/800/111/final"
_NVIDIA_ATTEST = "https://docs.nvidia.com/attestation/"


@control(
    id="DAT-001",
    title="Model weights stored unencrypted at rest",
    plane=Plane.DAT,
    severity=Severity.HIGH,
    failure_mode="Weights and checkpoints are the most valuable data in the cluster; on "
    "unencrypted storage, anyone with the disks, a snapshot or the storage admin role has them.",
    remediation="Encrypt every volume and bucket holding weights or checkpoints, with keys in a "
    "KMS/HSM and per-tenant data keys.",
    references=(_NIST_STORAGE, _NIST_KM),
)
def weights_unencrypted(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [
        (i, s)
        for i, s in enumerate(snap.inventory.storage)
        if {"weights", "checkpoints"} & set(s.holds)
    ]
    if not scoped:
        if snap.inventory.tenants:
            yield Outcome(
                Status.NOT_EVALUATED,
                "cluster",
                "the inventory declares no storage holding weights or checkpoints",
                {"missing": "storage"},
                ("storage",),
            )
        else:
            yield not_applicable("no tenants and no weight storage")
        return
    for index, store in scoped:
        ptr = ("storage", index, "encrypted_at_rest")
        evidence = {"holds": list(store.holds), "tenants": list(store.tenants)}
        if store.encrypted_at_rest is None:
            yield Outcome(
                Status.NOT_EVALUATED,
                f"storage/{store.name}",
                "encrypted_at_rest is not declared",
                {**evidence, "missing": "encrypted_at_rest"},
                ("storage", index),
            )
            continue
        yield Outcome(
            Status.PASS if store.encrypted_at_rest else Status.FAIL,
            f"storage/{store.name}",
            f"{joined(store.holds)} {'encrypted' if store.encrypted_at_rest else 'unencrypted'} "
            "at rest",
            evidence,
            ptr,
        )


@control(
    id="DAT-002",
    title="Encryption keys not held in a KMS or HSM",
    plane=Plane.DAT,
    severity=Severity.MEDIUM,
    failure_mode="Data keys in files or Kubernetes Secrets sit next to the data they protect; "
    "there is no access policy, audit trail, rotation or attestation gate on their use.",
    remediation="Keep key-encryption keys in Vault, a cloud KMS or an HSM; wrap per-tenant data "
    "keys with them and audit every unwrap.",
    references=(_NIST_KM,),
)
def no_kms(snap: Snapshot) -> Iterator[Outcome]:
    kms = {k.name: k for k in snap.inventory.secrets.kms}
    scoped = [(i, s) for i, s in enumerate(snap.inventory.storage) if s.encrypted_at_rest]
    if not scoped:
        yield not_applicable("no encrypted storage declared")
    for index, store in scoped:
        resource = f"storage/{store.name}"
        if store.kms is None:
            yield Outcome(
                Status.FAIL,
                resource,
                "encrypted, but no KMS is named for its keys",
                {"kms": None},
                ("storage", index),
            )
            continue
        kind = kms[store.kms].kind
        yield Outcome(
            Status.PASS if kind.is_real_kms else Status.FAIL,
            resource,
            f"keys held in {store.kms} ({kind.value})",
            {"kms": store.kms, "kind": kind.value},
            ("storage", index, "kms"),
        )


@control(
    id="DAT-003",
    title="Key release not gated on GPU attestation",
    plane=Plane.DAT,
    severity=Severity.HIGH,
    failure_mode="If keys for confidential weights are released without verifying the GPU's "
    "attestation, a host with CC off, in devtools mode or with rogue firmware receives them.",
    remediation="Release weight keys only through a broker that verifies NVIDIA GPU evidence "
    "(nonce, signature, certificate chain, RIM measurements) and a policy (`gpufence broker`).",
    references=(_NVIDIA_ATTEST, "https://docs.nvidia.com/confidential-computing/"),
)
def key_release_ungated(snap: Snapshot) -> Iterator[Outcome]:
    sensitive = [t.name for t in snap.inventory.tenants if t.data_sensitivity.needs_protection]
    if not sensitive:
        yield not_applicable("no confidential or regulated tenant")
        return
    release = snap.inventory.secrets.key_release
    resource = "secrets/key-release"
    evidence: dict[str, object] = {"tenants": sensitive}
    if release is None:
        yield Outcome(
            Status.NOT_EVALUATED,
            resource,
            f"no key_release declared for confidential tenants {joined(sensitive)}",
            {**evidence, "missing": "secrets.key_release"},
            ("secrets",),
        )
        return
    evidence |= {
        "mechanism": release.mechanism,
        "requires_attestation": release.requires_attestation,
    }
    gated = release.requires_attestation and release.mechanism in (
        "attestation-broker",
        "kms-direct",
    )
    yield Outcome(
        Status.PASS if gated else Status.FAIL,
        resource,
        f"keys released by {release.mechanism}, attestation "
        f"{'required' if release.requires_attestation else 'not required'}",
        evidence,
        ("secrets", "key_release"),
    )
