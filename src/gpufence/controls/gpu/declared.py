"""GPU isolation controls: does the sharing mechanism match the tenancy and the silicon?"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from gpufence.controls._common import (
    expect_flag,
    fact_evidence,
    joined,
    not_applicable,
    tenant_names,
)
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import DataSensitivity, SharingMode, VgpuMode
from gpufence.model.snapshot import NodeView, Snapshot
from gpufence.policy import SOFT_VGPU_MODES, rule_evidence

_DEVICE_PLUGIN = "https://github.com/NVIDIA/k8s-device-plugin#shared-access-to-gpus"
_MIG_GUIDE = "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/"
_MPS_DOC = "https://docs.nvidia.com/deploy/mps/"
_VGPU_DOC = "https://docs.nvidia.com/vgpu/"
_VGPU_MODES = (
    "https://docs.nvidia.com/ai-enterprise/release-8/latest/infra-software/vgpu/features/"
    "inference-mode-decision.html"
)
_MIG_L2_CHANNEL = "https://www.usenix.org/conference/usenixsecurity26/presentation/gu-cheng"


@control(
    id="GPU-001",
    title="Tenants share a GPU through time-slicing, MPS or time-sliced vGPU",
    plane=Plane.GPU,
    severity=Severity.CRITICAL,
    failure_mode="Time-slicing gives no memory or fault isolation and MPS gives no security "
    "isolation: one tenant can read another's GPU memory residue, crash its jobs or starve it.",
    remediation="Give each tenant whole GPUs, MIG instances or MIG-backed vGPUs; keep "
    "time-slicing, MPS and time-sliced vGPU to pools that serve a single tenant.",
    references=(_DEVICE_PLUGIN, _MPS_DOC, _MIG_GUIDE, _VGPU_MODES),
)
def soft_sharing_across_tenants(snap: Snapshot) -> Iterator[Outcome]:
    for view in snap.nodes:
        sharing = view.pool.sharing
        ptr = (*view.pointer[:2], "sharing")
        evidence: dict[str, object] = {"sharing": sharing.value, "tenants": tenant_names(view)}
        if sharing in (SharingMode.TIME_SLICING, SharingMode.MPS) and view.multi_tenant:
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"{sharing.value} shares GPUs between tenants {joined(tenant_names(view))}",
                {**evidence, **rule_evidence("no-soft-sharing")},
                ptr,
            )
        elif _uses_vgpu(view) and view.multi_tenant:
            yield _vgpu_mode_outcome(view, evidence)
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                f"sharing is {sharing.value} with {len(view.tenants)} tenant(s)",
                evidence,
                ptr,
            )


def _uses_vgpu(view: NodeView) -> bool:
    return view.pool.sharing is SharingMode.VGPU or view.gpu_fact("vgpu").value is True


def _vgpu_mode_outcome(view: NodeView, evidence: dict[str, object]) -> Outcome:
    """Rule time-sliced-vgpu: across tenants, time-sliced vGPU is judged like time-slicing."""
    fact = view.gpu_fact("vgpu_mode")
    who = joined(tenant_names(view))
    if not fact.known:
        return Outcome(
            Status.NOT_EVALUATED,
            view.resource,
            f"vGPU shared by tenants {who}, but the vGPU mode is unknown ({fact.origin}): "
            "time-sliced vGPU across tenants is judged like time-slicing; declare "
            "gpu_state.vgpu_mode",
            {**evidence, "missing": "vgpu_mode", **rule_evidence("time-sliced-vgpu")},
            fact.pointer,
        )
    mode = fact.value.value if isinstance(fact.value, VgpuMode) else str(fact.value)
    soft = mode in SOFT_VGPU_MODES
    return Outcome(
        Status.FAIL if soft else Status.PASS,
        view.resource,
        f"{mode} vGPU shared by tenants {who}"
        + (": time-sliced vGPUs share one GPU's SMs and memory system" if soft else ""),
        {
            **evidence,
            **fact_evidence(vgpu_mode=fact),
            **rule_evidence("time-sliced-vgpu" if soft else "hard-sharing"),
        },
        fact.pointer,
    )


@control(
    id="GPU-002",
    title="Consumer GPU serves more than one tenant",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="GeForce parts have no MIG, vGPU, ECC or confidential computing, so nothing in "
    "the silicon separates two tenants that land on the same card or host.",
    remediation="Dedicate consumer-GPU nodes to one tenant (or to internal batch work) and move "
    "multi-tenant work to data-center parts with MIG or vGPU.",
    references=(_MIG_GUIDE, _VGPU_DOC),
)
def consumer_gpu_multi_tenant(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [v for v in snap.nodes if v.gpu.consumer]
    if not scoped:
        yield not_applicable("no consumer GPUs in the inventory")
    for view in scoped:
        status = Status.FAIL if view.multi_tenant else Status.PASS
        yield Outcome(
            status,
            view.resource,
            f"consumer GPU {view.gpu.name} serves tenants {joined(tenant_names(view))}",
            {
                "gpu_model": view.gpu.key,
                "tenants": tenant_names(view),
                **rule_evidence("consumer-single-tenant"),
            },
            view.pointer,
        )


@control(
    id="GPU-003",
    title="MIG declared on a GPU that has no MIG",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="The operator believes tenants are in hardware partitions, but the silicon "
    "cannot partition: the pool actually shares whole GPUs (or fails to schedule).",
    remediation="Use a MIG-capable model (A100/A30, H100/H200, B200/B300, GB200/GB300, RTX PRO "
    "6000 Blackwell) for MIG pools, or dedicate the GPUs.",
    references=(_MIG_GUIDE,),
)
def mig_without_silicon(snap: Snapshot) -> Iterator[Outcome]:
    yield from _declared_on_capable_silicon(snap, SharingMode.MIG, "mig", "MIG")


@control(
    id="GPU-004",
    title="vGPU declared on a GPU that vGPU does not support",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="Hypervisor-mediated isolation is assumed where the part has no vGPU support "
    "(GeForce), so tenants really share an unmediated device.",
    remediation="Run vGPU only on data-center/professional GPUs listed by NVIDIA vGPU, or give "
    "each tenant whole GPUs by passthrough.",
    references=(_VGPU_DOC,),
)
def vgpu_without_silicon(snap: Snapshot) -> Iterator[Outcome]:
    yield from _declared_on_capable_silicon(snap, SharingMode.VGPU, "vgpu", "vGPU")


def _declared_on_capable_silicon(
    snap: Snapshot, mode: SharingMode, fact_name: str, label: str
) -> Iterator[Outcome]:
    """Nodes whose pool shares by ``mode`` (or whose GPUs run it) on silicon that lacks it."""
    scoped = [v for v in snap.nodes if v.pool.sharing is mode or v.gpu_fact(fact_name).value]
    if not scoped:
        yield not_applicable(f"no node uses {label}")
    for view in scoped:
        ok = view.gpu.mig_capable if mode is SharingMode.MIG else view.gpu.vgpu
        yield Outcome(
            Status.PASS if ok else Status.FAIL,
            view.resource,
            f"{view.gpu.name} {'supports' if ok else 'does not support'} {label}",
            {
                "gpu_model": view.gpu.key,
                "sharing": view.pool.sharing.value,
                **rule_evidence("silicon-no-mig"),
            },
            (*view.pointer[:2], "sharing"),
        )


@control(
    id="GPU-005",
    title="MIG sharing declared but MIG mode is off",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="With MIG mode off the device plugin advertises whole GPUs, so the MIG "
    "partitions the plan relies on do not exist and tenants get whatever is scheduled.",
    remediation="Enable MIG mode (nvidia-smi -mig 1, or the GPU Operator MIG manager with "
    "nvidia.com/mig.config) on every GPU of MIG pools, and reset the GPUs.",
    references=(_MIG_GUIDE, "https://github.com/NVIDIA/mig-parted"),
)
def mig_mode_off(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [v for v in snap.nodes if v.pool.sharing is SharingMode.MIG and v.gpu.mig_capable]
    if not scoped:
        yield not_applicable("no MIG pool on MIG-capable silicon")
    for view in scoped:
        yield expect_flag(
            view.resource,
            "MIG mode",
            "mig",
            view.gpu_fact("mig"),
            want=True,
            says=("MIG mode is on in a MIG pool", "MIG mode is off in a MIG pool"),
        )


@control(
    id="GPU-006",
    title="ECC off or consumer GPU where confidential or regulated data is processed",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="Without ECC, memory faults silently corrupt results and row-hammer style "
    "attacks on GPU memory go undetected on the GPUs that hold the most sensitive data.",
    remediation="Enable ECC (nvidia-smi -e 1, then reboot) on GPUs serving confidential or "
    "regulated tenants, or move those tenants to parts with ECC.",
    references=("https://docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt/", _MIG_GUIDE),
)
def ecc_off_for_sensitive(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [v for v in snap.nodes if any(t.data_sensitivity.needs_protection for t in v.tenants)]
    if not scoped:
        yield not_applicable("no confidential or regulated tenant runs on a GPU node")
    for view in scoped:
        sensitive = joined(t.name for t in view.tenants if t.data_sensitivity.needs_protection)
        if not view.gpu.ecc or view.gpu.consumer:
            what = "has no ECC memory" if not view.gpu.ecc else "is a consumer (GeForce) part"
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"{view.gpu.name} {what}; {sensitive} need data-center parts with ECC on",
                {"gpu_model": view.gpu.key, **rule_evidence("ecc-required")},
                view.pointer,
            )
            continue
        judged = expect_flag(
            view.resource,
            "ECC mode",
            "ecc",
            view.gpu_fact("ecc"),
            want=True,
            says=("ECC is on", "ECC is off"),
        )
        yield replace(judged, evidence={**judged.evidence, **rule_evidence("ecc-required")})


@control(
    id="GPU-007",
    title="Regulated tenant shares a node with other tenants",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="Regulated data on a node shared with other tenants shares the host kernel, "
    "driver, PCIe and NVLink with them; a single driver or container escape crosses tenants.",
    remediation="Run regulated tenants on dedicated nodes (node affinity + taints), with no "
    "other tenant's workloads scheduled there.",
    references=(
        "https://docs.nvidia.com/confidential-computing/",
        "https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/",
    ),
)
def regulated_on_shared_node(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [
        v
        for v in snap.nodes
        if any(t.data_sensitivity is DataSensitivity.REGULATED for t in v.tenants)
    ]
    if not scoped:
        yield not_applicable("no regulated tenant runs on a GPU node")
    for view in scoped:
        yield Outcome(
            Status.FAIL if view.multi_tenant else Status.PASS,
            view.resource,
            f"node serves {joined(tenant_names(view))}",
            {"tenants": tenant_names(view), **rule_evidence("regulated-dedicated-node")},
            view.pointer,
        )


@control(
    id="GPU-008",
    title="Observed GPU state contradicts the inventory",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="The isolation the inventory promises (MIG, ECC, CC mode) is not what the GPUs "
    "run: a reset, a failed MIG manager or a re-imaged node silently drops a protection.",
    remediation="Restore the declared state on the node (or correct the inventory if the change "
    "was intended), then re-collect evidence with `gpufence collect gpu`.",
    references=(_MIG_GUIDE, "https://docs.nvidia.com/confidential-computing/"),
)
def observed_state_drift(snap: Snapshot) -> Iterator[Outcome]:
    unobserved = []
    for view in snap.nodes:
        observed = {n: f for n, f in view.gpu_state.items() if f.source == "observed"}
        if not observed:
            unobserved.append(view.node.name)
            continue
        drift = {
            n: f for n, f in observed.items() if f.declared is not None and f.declared != f.value
        }
        if drift:
            described = ", ".join(
                f"{n}: declared {_plain_text(f.declared)}, observed {_plain_text(f.value)}"
                for n, f in drift.items()
            )
            first = next(iter(drift.values()))
            yield Outcome(
                Status.FAIL,
                view.resource,
                described,
                fact_evidence(**drift),
                first.pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                "observed GPU state matches the inventory (" + ", ".join(sorted(observed)) + ")",
                fact_evidence(**observed),
                view.pointer,
            )
    if unobserved:
        yield Outcome(
            Status.NOT_EVALUATED,
            "cluster",
            f"no GPU evidence for {len(unobserved)} node(s) ({joined(unobserved[:5])}"
            f"{', ...' if len(unobserved) > 5 else ''}); run `gpufence collect gpu` on them",
            {"missing": "gpu evidence", "nodes": unobserved},
        )


def _plain_text(value: object) -> str:
    return str(getattr(value, "value", value)).lower() if value is not None else "nothing"
