"""A broker configuration in a temp folder: test device CA, test RIM CA, signed RIMs, KEK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import devicefactory as f

SECRET = b"model-weights-key: 0123456789abcdef0123456789abcdef"
SECRET_B = b"tenant-b weights key: fedcba9876543210fedcba98765432"


@dataclass
class BrokerKit:
    config: Path
    devices: list[f.TestDevice]
    golden: list[bytes]
    signing_key: ec.EllipticCurvePrivateKey
    audit_log: Path
    """The broker database, which holds the decision log."""
    devices_b: list[f.TestDevice]
    """Tenant B's GPUs: the only ones policy ``tenant-b`` (resource ``tenantB-weights``) allows."""

    def evidence(
        self,
        nonce: bytes,
        *,
        count: int | None = None,
        tamper: bool = False,
        tenant_b: bool = False,
    ) -> list[dict[str, str]]:
        items = []
        devices = self.devices_b if tenant_b else self.devices
        for device in devices[: count or len(devices)]:
            report = bytearray(f.build_report(device, nonce, self.golden))
            if tamper:
                report[100] ^= 0x01  # inside measurement block 2
            items.append(f.serialized(device, bytes(report), nonce))
        return items


def make_broker_kit(tmp: Path, *, gpus: int = 2, token_ttl_s: int = 120) -> BrokerKit:
    root = f.make_root("Test Device Identity CA")
    devices = [f.make_device("HOPPER", root=root) for _ in range(gpus)]
    devices_b = [f.make_device("HOPPER", root=root) for _ in range(gpus)]
    ueids_b = ", ".join(f"'{d.chain[0].serial_number}'" for d in devices_b)
    golden = f.measurements()
    signer = f.make_rim_signer()
    (tmp / "driver.xml").write_bytes(
        f.make_rim(signer, "550.90.07", {i: golden[i] for i in range(0, 21)})
    )
    (tmp / "vbios.xml").write_bytes(
        f.make_rim(signer, "96.00.9F.00.01", {i: golden[i] for i in range(21, 33)})
    )
    pem = serialization.Encoding.PEM
    (tmp / "device-root.pem").write_bytes(root[0].public_bytes(pem))
    (tmp / "rim-root.pem").write_bytes(signer.root.public_bytes(pem))
    key = ec.generate_private_key(ec.SECP384R1())
    (tmp / "signing.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp / "kek.bin").write_bytes(bytes(range(32)).hex().encode())
    (tmp / "policy.yaml").write_text(
        "policy:\n  id: test-prod\n  version: 3\n"
        f"  devices: {{gpu: {gpus}}}\n"
        "  allowed_driver_versions: ['550.90.07']\n"
        "  accept_not_evaluated: [revocation, 'rim.*.revocation']\n"
    )
    (tmp / "policy-b.yaml").write_text(
        "policy:\n  id: tenant-b\n  version: 1\n"
        f"  devices: {{gpu: {gpus}}}\n"
        f"  allowed_ueids: [{ueids_b}]\n"
        "  accept_not_evaluated: [revocation, 'rim.*.revocation']\n"
    )
    config = tmp / "broker.yaml"
    config.write_text(
        "broker:\n  audience: gpufence-test\n  nonce_ttl_s: 60\n"
        f"  token_ttl_s: {token_ttl_s}\n"
        "  database: broker.db\n  signing_key: signing.pem\n"
        "  kek: {source: file, path: kek.bin}\n  rims: [driver.xml, vbios.xml]\n"
        "  trust_anchors: {device_root: device-root.pem, rim_root: rim-root.pem}\n"
        "  policy: policy.yaml\n"
        "  policies: {tenant-b: policy-b.yaml}\n"
        "  resources:\n"
        "    weights: {tenant: tenant-a}\n"
        "    tenantB-weights: {tenant: tenant-b, policy: tenant-b}\n"
    )
    return BrokerKit(config, devices, golden, key, tmp / "broker.db", devices_b)
