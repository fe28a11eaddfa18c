"""Builders for test inventories: one valid, fully declared cluster to mutate per test."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from gpufence.audit import audit_snapshot
from gpufence.controls import controls_by_id
from gpufence.load.inventory import load_snapshot
from gpufence.model.findings import Finding

_BASE: dict[str, Any] = {
    "version": 1,
    "organization": {"name": "Test Org", "country": "DE"},
    "sites": [{"name": "fra1", "country": "DE", "ownership": "owned"}],
    "tenants": [
        {"name": "alpha", "trust": "partner", "data_sensitivity": "internal"},
        {"name": "beta", "trust": "untrusted", "data_sensitivity": "public"},
    ],
    "node_pools": [
        {
            "name": "pool1",
            "site": "fra1",
            "gpu_model": "H100-SXM5-80GB",
            "gpus_per_node": 8,
            "sharing": "dedicated",
            "workloads": [{"tenant": "alpha"}],
            "networks": ["compute"],
            "gpu_state": {"mig": False, "ecc": True, "cc_mode": "off"},
            "host": {"secure_boot": True},
            "nodes": [{"name": "n1", "bmc": "n1-bmc"}],
        }
    ],
    "bmcs": [
        {
            "name": "n1-bmc",
            "address": "10.0.0.1",
            "network": "oob",
            "default_credentials": False,
            "ipmi_over_lan": False,
        }
    ],
    "networks": [
        {
            "name": "compute",
            "kind": "infiniband",
            "purposes": ["compute"],
            "tenant_isolation": "pkey",
        },
        {"name": "oob", "kind": "ethernet", "purposes": ["oob"]},
    ],
    "storage": [
        {
            "name": "weights",
            "holds": ["weights"],
            "tenants": ["alpha"],
            "encrypted_at_rest": True,
            "kms": "vault",
        }
    ],
    "secrets": {
        "kms": [{"name": "vault", "kind": "vault"}],
        "key_release": {"mechanism": "attestation-broker", "requires_attestation": True},
    },
}


def base_inventory() -> dict[str, Any]:
    """A fresh deep copy of the valid base inventory."""
    return copy.deepcopy(_BASE)


def write_inventory(tmp_path: Path, data: dict[str, Any] | str, name: str = "inv.yaml") -> Path:
    path = tmp_path / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def run_control(tmp_path: Path, data: dict[str, Any], control_id: str) -> list[Finding]:
    """Load ``data`` as an inventory and run one control over it."""
    snapshot = load_snapshot(write_inventory(tmp_path, data))
    result = audit_snapshot(snapshot, [controls_by_id()[control_id]])
    return list(result.findings)
