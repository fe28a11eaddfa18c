"""GPU controls over observed per-GPU detail (evidence of `gpufence collect gpu`).

GPU-008 compares the node-level ``gpu_state`` facts with the inventory. These controls read the
per-GPU detail the GPU collectors keep in the evidence's ``raw`` (the same shape from NVML and
from nvidia-smi): the silicon actually installed, modes pending for the next reset, and compute
instances that split one GPU instance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from gpufence.controls._common import joined, tenant_names
from gpufence.controls.engine import Outcome, control
from gpufence.model.evidence import CollectorName
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.observed_gpu import GpuReport
from gpufence.model.snapshot import NodeView, Snapshot

_GPU_COLLECTORS = CollectorName.gpu()
_MIG_GUIDE = "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/"
_NVML_API = "https://docs.nvidia.com/deploy/nvml-api/"


@dataclass(frozen=True)
class _Observed:
    view: NodeView
    report: GpuReport
    origin: str


def _observed(snap: Snapshot) -> tuple[list[_Observed], list[str]]:
    """Nodes with GPU-collector evidence (newest document), and the nodes without."""
    found: list[_Observed] = []
    missing: list[str] = []
    for view in snap.nodes:
        docs = [
            (d, o) for d, o in snap.evidence_for(view.resource) if d.collector in _GPU_COLLECTORS
        ]
        if not docs:
            missing.append(view.node.name)
            continue
        doc, origin = docs[-1]
        try:
            report = GpuReport.model_validate({**doc.raw, "collector": doc.collector})
        except ValidationError:
            missing.append(view.node.name)
            continue
        found.append(_Observed(view, report, f"{origin} ({doc.collector})"))
    return found, missing


def _no_evidence(missing: list[str]) -> Iterator[Outcome]:
    if missing:
        shown = joined(missing[:5]) + (", ..." if len(missing) > 5 else "")
        yield Outcome(
            Status.NOT_EVALUATED,
            "cluster",
            f"no per-GPU evidence for {len(missing)} node(s) ({shown}); run "
            "`gpufence collect gpu` on them",
            {"missing": "gpu evidence", "nodes": missing},
        )


@control(
    id="GPU-009",
    title="Installed GPUs differ from the model or count the inventory declares",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="Isolation was planned for the declared silicon (its MIG grid, CC and ECC "
    "support); other GPUs in the node silently change what is possible, e.g. no MIG or no CC.",
    remediation="Correct the pool's gpu_model / gpus_per_node in the inventory, or move the node "
    "to a pool that matches its GPUs, and re-run the plan and the audit.",
    references=(_NVML_API, "https://pci-ids.ucw.cz/read/PC/10de"),
)
def installed_gpus_differ(snap: Snapshot) -> Iterator[Outcome]:
    observed, missing = _observed(snap)
    for item in observed:
        view, gpus = item.view, item.report.gpus
        declared_ids = set(view.gpu.pci_device_ids)
        unknown = [g.index for g in gpus if g.pci_device_id is None]
        if unknown:
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"the PCI device ID of GPU(s) {unknown} was not read ({item.origin})",
                {"missing": "pci_device_id"},
                view.pointer,
            )
            continue
        foreign = Counter(
            f"{g.product_name or '?'} ({g.pci_device_id})"
            for g in gpus
            if g.pci_device_id not in declared_ids
        )
        problems = []
        if foreign:
            problems.append(
                f"found {joined(f'{n}x {name}' for name, n in foreign.items())} where the pool "
                f"declares {view.gpu.name} ({joined(sorted(declared_ids))})"
            )
        if len(gpus) != view.pool.gpus_per_node:
            problems.append(
                f"{len(gpus)} GPU(s) observed, the pool declares {view.pool.gpus_per_node}"
            )
        yield Outcome(
            Status.FAIL if problems else Status.PASS,
            view.resource,
            "; ".join(problems) or f"{len(gpus)} x {view.gpu.name} as declared ({item.origin})",
            {
                "declared_model": view.gpu.key,
                "declared_count": view.pool.gpus_per_node,
                "observed": [
                    {"index": g.index, "product_name": g.product_name, "pci": g.pci_device_id}
                    for g in gpus
                ],
            },
            (*view.pointer[:2], "gpu_model"),
        )
    yield from _no_evidence(missing)


@control(
    id="GPU-010",
    title="A pending GPU mode change drops MIG or ECC at the next reset",
    plane=Plane.GPU,
    severity=Severity.MEDIUM,
    failure_mode="MIG or ECC is on now but its pending mode is off, so the next GPU reset or "
    "reboot silently removes the partitioning or the memory protection tenants rely on.",
    remediation="Set the pending mode back (nvidia-smi -mig 1 / nvidia-smi -e 1, or fix the MIG "
    "manager's nvidia.com/mig.config) before the node is reset.",
    references=(_MIG_GUIDE, "https://docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt/"),
)
def pending_mode_drops_protection(snap: Snapshot) -> Iterator[Outcome]:
    observed, missing = _observed(snap)
    for item in observed:
        view = item.view
        drops = []
        for gpu in item.report.gpus:
            if gpu.mig_mode == "enabled" and gpu.mig_mode_pending == "disabled":
                drops.append(f"GPU {gpu.index}: MIG on, pending off")
            if gpu.ecc_mode == "enabled" and gpu.ecc_mode_pending == "disabled":
                drops.append(f"GPU {gpu.index}: ECC on, pending off")
        unread = [
            g.index
            for g in item.report.gpus
            if (g.mig_mode == "enabled" and g.mig_mode_pending is None)
            or (g.ecc_mode == "enabled" and g.ecc_mode_pending is None)
        ]
        if not drops and unread:
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"pending MIG/ECC mode of GPU(s) {unread} was not read ({item.origin})",
                {"missing": "pending modes"},
                view.pointer,
            )
            continue
        yield Outcome(
            Status.FAIL if drops else Status.PASS,
            view.resource,
            "; ".join(drops) or "no pending mode change removes MIG or ECC",
            {
                "gpus": [
                    {
                        "index": g.index,
                        "mig": [g.mig_mode, g.mig_mode_pending],
                        "ecc": [g.ecc_mode, g.ecc_mode_pending],
                    }
                    for g in item.report.gpus
                ]
            },
            view.pointer,
        )
    yield from _no_evidence(missing)


@control(
    id="GPU-011",
    title="A MIG GPU instance is split into compute instances on a shared node",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="Compute instances of one GPU instance share its memory, L2 cache and copy "
    "engines; handing them to different tenants gives no memory isolation between them.",
    remediation="Give each tenant whole GPU instances (one compute instance per GI), or keep "
    "compute-instance splits to nodes that serve a single tenant.",
    references=(_MIG_GUIDE, _NVML_API),
)
def compute_instance_split(snap: Snapshot) -> Iterator[Outcome]:
    observed, missing = _observed(snap)
    for item in observed:
        view = item.view
        splits = []
        for gpu in item.report.gpus:
            per_gi = Counter(
                i.gpu_instance_id for i in gpu.mig_instances if i.gpu_instance_id is not None
            )
            named = {i.compute_profile for i in gpu.mig_instances if i.compute_profile}
            split_gis = sorted(gi for gi, n in per_gi.items() if n > 1)
            if split_gis or named:
                what = ", ".join(sorted(named)) or f"GI {split_gis}"
                splits.append(f"GPU {gpu.index}: {what}")
        fail = bool(splits) and view.multi_tenant
        if splits and not view.multi_tenant:
            message = f"compute-instance splits ({'; '.join(splits)}) on a single-tenant node"
        elif splits:
            message = (
                f"compute-instance splits ({'; '.join(splits)}) on a node shared by "
                f"{joined(tenant_names(view))}"
            )
        else:
            message = "every GPU instance has at most one compute instance"
        yield Outcome(
            Status.FAIL if fail else Status.PASS,
            view.resource,
            message,
            {"splits": splits, "tenants": tenant_names(view)},
            view.pointer,
        )
    yield from _no_evidence(missing)
