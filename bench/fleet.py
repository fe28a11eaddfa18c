"""Synthetic fleet generator for benchmarks: a realistic-shaped inventory of any size."""

from __future__ import annotations

import argparse
import random
from typing import Any

import yaml

MODELS = ["H100-SXM5-80GB", "H200", "B200", "L40S", "A100-SXM4-80GB"]
SHARING = ["dedicated", "mig", "dedicated", "vgpu", "dedicated"]


def fleet(nodes: int, tenants: int = 50, nodes_per_pool: int = 32, seed: int = 7) -> dict[str, Any]:
    """An inventory with ``nodes`` GPU nodes (each with a BMC) spread over pools and two sites."""
    rng = random.Random(seed)
    tenant_rows = [
        {
            "name": f"t{i:04d}",
            "trust": rng.choice(["internal", "partner", "untrusted"]),
            "data_sensitivity": rng.choice(["public", "internal", "confidential", "regulated"]),
        }
        for i in range(tenants)
    ]
    pools, bmcs = [], []
    for p in range((nodes + nodes_per_pool - 1) // nodes_per_pool):
        kind = p % len(MODELS)
        members = [
            {"name": f"n{p:04d}-{n:03d}", "bmc": f"n{p:04d}-{n:03d}-bmc"}
            for n in range(min(nodes_per_pool, nodes - p * nodes_per_pool))
        ]
        bmcs += [
            {
                "name": m["bmc"],
                "address": f"10.{p // 250}.{p % 250}.{i + 1}",
                "network": "oob",
                "default_credentials": False,
                "ipmi_over_lan": rng.random() < 0.02,
            }
            for i, m in enumerate(members)
        ]
        pools.append(
            {
                "name": f"pool{p:04d}",
                "site": "site-a" if p % 2 else "site-b",
                "gpu_model": MODELS[kind],
                "gpus_per_node": 8,
                "sharing": SHARING[kind],
                "workloads": [
                    {"tenant": rng.choice(tenant_rows)["name"], "gpus_per_job": rng.choice([1, 8])}
                    for _ in range(rng.randint(1, 3))
                ],
                "networks": ["ib", "storage", "mgmt"],
                "gpu_state": {
                    "mig": SHARING[kind] == "mig",
                    "ecc": True,
                    "cc_mode": "on",
                    "cc_multi_gpu": "none",
                },
                "host": {"secure_boot": True},
                "nodes": members,
            }
        )
    return {
        "version": 1,
        "organization": {"name": "Bench", "country": "DE"},
        "sites": [
            {"name": "site-a", "country": "DE", "ownership": "owned"},
            {"name": "site-b", "country": "DE", "ownership": "rented"},
        ],
        "tenants": tenant_rows,
        "node_pools": pools,
        "bmcs": bmcs,
        "networks": [
            {
                "name": "ib",
                "kind": "infiniband",
                "purposes": ["compute"],
                "tenant_isolation": "pkey",
            },
            {
                "name": "storage",
                "kind": "ethernet",
                "purposes": ["storage"],
                "tenant_isolation": "vrf",
                "routed_to": ["front"],
            },
            {
                "name": "front",
                "kind": "ethernet",
                "purposes": ["tenant"],
                "tenant_isolation": "vxlan",
            },
            {"name": "mgmt", "kind": "ethernet", "purposes": ["management"]},
            {"name": "oob", "kind": "ethernet", "purposes": ["oob"], "routed_to": ["mgmt"]},
        ],
        "storage": [
            {"name": "weights", "holds": ["weights"], "encrypted_at_rest": True, "kms": "v"}
        ],
        "secrets": {
            "kms": [{"name": "v", "kind": "vault"}],
            "key_release": {"mechanism": "attestation-broker", "requires_attestation": True},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("nodes", type=int)
    args = parser.parse_args()
    print(yaml.safe_dump(fleet(args.nodes), sort_keys=False), end="")


if __name__ == "__main__":
    main()
