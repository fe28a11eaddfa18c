"""Artifacts of a plan: mig-parted config, device-plugin configs, Kubernetes manifests, summary.

:func:`render_artifacts` returns every file as text (pure); :func:`write_artifacts` writes them.
Layout under the output directory::

    plan.json                     the full plan (tiers, placements with MIG starts, bounds)
    summary.txt                   the human summary
    planned-inventory.yaml        the inventory as declared once the plan is applied
    mig-parted/config.yaml        mig-parted `version: v1` config, one entry per node layout
    device-plugin/<pool>.yaml     k8s-device-plugin config per pool
    device-plugin/configmap.yaml  all of them in one ConfigMap (Helm `config.name`)
    k8s/nodes.yaml                node labels and taints (partial Node objects)
    k8s/tenants/<tenant>.yaml     Namespace, ResourceQuota, PodTemplate per tenant
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from gpufence.catalog import GpuModel, load_catalog
from gpufence.errors import InputError
from gpufence.model.inventory import Inventory
from gpufence.model.snapshot import Snapshot
from gpufence.plan.emit.device_plugin import (
    config_key,
    device_plugin_config,
    device_plugin_configmap,
)
from gpufence.plan.emit.k8s import node_objects, tenant_manifests
from gpufence.plan.emit.mig_parted import mig_parted_config
from gpufence.plan.emit.names import dns_label
from gpufence.plan.emit.summary import summary_dict, summary_text
from gpufence.plan.planned import planned_inventory
from gpufence.plan.types import Plan

__all__ = ["Artifacts", "render_artifacts", "write_artifacts"]


@dataclass(frozen=True)
class Artifacts:
    """The files a plan writes (relative path -> text) and its summary as text and JSON."""

    files: Mapping[str, str]
    """Relative POSIX path -> file text."""
    summary_text: str
    summary: Mapping[str, object]


def _yaml(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _yaml_all(docs: list[dict[str, object]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def _relocated(inventory: Inventory, source_dir: Path, out_dir: Path | None) -> Inventory:
    """Relative paths in the inventory re-pointed from the output directory."""
    if out_dir is None:
        return inventory

    def moved(path: str | None) -> str | None:
        if path is None or Path(path).is_absolute():
            return path
        return os.path.relpath(source_dir / path, out_dir.resolve())

    networks = tuple(
        n.model_copy(update={"partitions_conf": moved(n.partitions_conf)})
        for n in inventory.networks
    )
    secrets = inventory.secrets
    if secrets.key_release is not None:
        release = secrets.key_release.model_copy(
            update={"broker_config": moved(secrets.key_release.broker_config)}
        )
        secrets = secrets.model_copy(update={"key_release": release})
    return inventory.model_copy(update={"networks": networks, "secrets": secrets})


def render_artifacts(snapshot: Snapshot, plan: Plan, out_dir: Path | None = None) -> Artifacts:
    """Every artifact of ``plan`` (planned inventory, mig-parted, device plugin, Kubernetes,
    plan.json).
    """
    catalog = load_catalog()
    models: dict[str, GpuModel] = {}
    for pool in plan.pools:
        model = catalog.get(pool.gpu_model)
        assert model is not None
        models[pool.gpu_model] = model
    mig_doc, mig_labels = mig_parted_config(plan, models)
    files: dict[str, str] = {}
    planned = _relocated(
        planned_inventory(snapshot.inventory, plan), snapshot.inventory_dir, out_dir
    )
    files["planned-inventory.yaml"] = (
        "# The inventory as declared once the gpufence plan is applied (gpufence audit it).\n"
        + _yaml(planned.model_dump(mode="json", exclude_defaults=True))
    )
    files["mig-parted/config.yaml"] = _yaml(mig_doc)
    for pool in plan.pools:
        files[f"device-plugin/{config_key(pool)}.yaml"] = _yaml(device_plugin_config(pool))
    files["device-plugin/configmap.yaml"] = _yaml(device_plugin_configmap(plan))
    files["k8s/nodes.yaml"] = _yaml_all(node_objects(plan, mig_labels, models))
    cpu_tee = {p.name: p.host.cpu_tee for p in snapshot.inventory.node_pools}
    for tenant, docs in tenant_manifests(plan, cpu_tee).items():
        files[f"k8s/tenants/{dns_label(tenant)}.yaml"] = _yaml_all(docs)
    names = sorted([*files, "plan.json", "summary.txt"])
    summary = summary_dict(plan, snapshot.source_file, mig_labels, names)
    text = summary_text(plan, snapshot.source_file, mig_labels, names)
    full = plan.model_dump(mode="json")
    full["mig_config_labels"] = mig_labels
    files["plan.json"] = json.dumps(full, indent=1) + "\n"
    files["summary.txt"] = text
    return Artifacts(files=files, summary_text=text, summary=summary)


def write_artifacts(out_dir: Path, artifacts: Artifacts) -> list[Path]:
    """Write every file under ``out_dir`` (created); InputError when it cannot be written."""
    written = []
    try:
        for name, text in artifacts.files.items():
            path = out_dir.joinpath(*PurePosixPath(name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write the plan: {exc.strerror or exc}") from exc
    return written
