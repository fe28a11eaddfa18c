"""NVIDIA mig-parted configuration (``version: v1``, ``mig-configs``) for the planned geometry.

One named configuration per distinct node layout (the per-GPU geometries of a node); each node
gets the label ``nvidia.com/mig.config=<name>``. A uniform node is one entry with
``devices: all``; a node whose GPUs differ lists ``devices: [index, ...]`` per geometry (the
format of mig-parted's examples/config.yaml ``custom-config``). Every entry carries the model's
``device-filter`` so a config never applies to a GPU it was not planned for. mig-parted places
instances itself (NVML default placement, retrying creation orders); the exact starts the planner
chose are in plan.json.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

from gpufence.catalog import GpuModel
from gpufence.plan.emit.names import label_value
from gpufence.plan.types import NodePlan, Plan

__all__ = ["DISABLED", "mig_parted_config"]

DISABLED = "all-disabled"


def _device_filter(model: GpuModel) -> list[str]:
    return [f"{pci}10DE" for pci in model.pci_device_ids]


def _devices(geometry: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(geometry)
    # Largest instances first: the creation order mig-parted tries first (MIG User Guide:
    # create 3g before smaller ones without explicit placement).
    return dict(sorted(counts.items(), key=lambda kv: (-int(kv[0].split("g.", 1)[0]), kv[0])))


def _slug(model: GpuModel) -> str:
    return model.key.lower()


def _name(model: GpuModel, layout: tuple[tuple[str, ...], ...]) -> str:
    shapes = set(layout)
    if len(shapes) == 1:
        geometry = next(iter(shapes))
        if not geometry:
            name = f"gf-{_slug(model)}-empty"
        else:
            parts = [f"{n}x{p.replace('+', '.')}" for p, n in _devices(geometry).items()]
            name = f"gf-{_slug(model)}-" + "-".join(parts)
        if len(name) <= 63:
            return label_value(name)
    digest = hashlib.sha256(repr(layout).encode()).hexdigest()[:10]
    return label_value(f"gf-{_slug(model)}-{digest}")


def _entries(model: GpuModel, layout: tuple[tuple[str, ...], ...]) -> list[dict[str, Any]]:
    if len(set(layout)) == 1:
        return [
            {
                "device-filter": _device_filter(model),
                "devices": "all",
                "mig-enabled": True,
                "mig-devices": _devices(layout[0]),
            }
        ]
    by_geometry: dict[tuple[str, ...], list[int]] = {}
    for index, geometry in enumerate(layout):
        by_geometry.setdefault(geometry, []).append(index)
    return [
        {
            "device-filter": _device_filter(model),
            "devices": indices,
            "mig-enabled": True,
            "mig-devices": _devices(geometry),
        }
        for geometry, indices in by_geometry.items()
    ]


def mig_parted_config(
    plan: Plan, models: Mapping[str, GpuModel]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the mig-parted config document, node name -> ``nvidia.com/mig.config`` value).

    ``models``: catalog row per GPU model key. Nodes of MIG-capable models outside MIG pools
    get ``all-disabled``; nodes of parts without MIG get no label.
    """
    configs: dict[str, list[dict[str, Any]]] = {
        DISABLED: [{"devices": "all", "mig-enabled": False}]
    }
    labels: dict[str, str] = {}
    for pool in plan.pools:
        model = models[pool.gpu_model]
        if not model.mig_capable:
            continue
        for node in pool.nodes:
            labels[node.name] = _node_config(configs, model, node)
    return {"version": "v1", "mig-configs": configs}, labels


def _node_config(configs: dict[str, list[dict[str, Any]]], model: GpuModel, node: NodePlan) -> str:
    if not node.mig:
        return DISABLED
    layout = tuple(g.geometry for g in node.gpus)
    name = _name(model, layout)
    configs.setdefault(name, _entries(model, layout))
    return name
