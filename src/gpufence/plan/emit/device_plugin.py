"""NVIDIA k8s-device-plugin configuration per node pool (``version: v1``).

No pool gets a ``sharing`` section: the planner never time-slices or runs MPS, and a pool that
serves several tenants must not (control GPU-001). ``flags.migStrategy`` is ``none`` for pools
without MIG, ``single`` where every MIG GPU of the pool carries identical instances, ``mixed``
where geometries differ. Nodes select their pool's entry with the label
``nvidia.com/device-plugin.config=<key>`` (Helm ``config.map`` / ConfigMap keys).
"""

from __future__ import annotations

from typing import Any

import yaml

from gpufence.plan.emit.names import label_value
from gpufence.plan.types import Plan, PoolPlan

__all__ = ["CONFIGMAP", "config_key", "device_plugin_config", "device_plugin_configmap"]

CONFIGMAP = "gpufence-device-plugin-configs"


def config_key(pool: PoolPlan) -> str:
    """ConfigMap key and node-label value of a pool's device-plugin config."""
    return label_value(pool.name)


def device_plugin_config(pool: PoolPlan) -> dict[str, Any]:
    """The NVIDIA device-plugin configuration for one planned pool."""
    return {
        "version": "v1",
        "flags": {"migStrategy": pool.mig_strategy, "failOnInitError": True},
    }


def device_plugin_configmap(plan: Plan, namespace: str = "gpu-operator") -> dict[str, Any]:
    """One ConfigMap holding every pool's config (Helm: ``config.name=<this ConfigMap>``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": namespace},
        "data": {
            config_key(p): yaml.safe_dump(device_plugin_config(p), sort_keys=False)
            for p in plan.pools
        },
    }
