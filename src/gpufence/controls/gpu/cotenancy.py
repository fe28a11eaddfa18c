"""GPU co-tenancy: who shares a physical GPU through partitions, and what that leaves open."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import joined, not_applicable, tenant_names
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import SharingMode, Trust
from gpufence.model.snapshot import NodeView, Snapshot
from gpufence.policy import may_share_gpu, rule_evidence

_MIG_GUIDE = "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/"
_MIG_L2_CHANNEL = "https://www.usenix.org/conference/usenixsecurity26/presentation/gu-cheng"
_CC_R590 = "https://docs.nvidia.com/confidential-computing/release-notes/r590-trd1"

_RESIDUAL = (
    "residual risks of MIG/vGPU co-tenancy: the host driver and PCIe link are shared, the L2 "
    "memory system leaks timing across MIG instances (memory-barrier side channel, USENIX "
    "Security 2026), and compute instances inside one GPU instance share its memory"
)


def _mechanism(view: NodeView) -> str | None:
    """How tenants of this node share physical GPUs, or None (whole GPUs)."""
    sharing = view.pool.sharing
    if sharing is not SharingMode.DEDICATED:
        return sharing.value
    if view.gpu_fact("mig").value is True:
        return "mig"
    if view.gpu_fact("vgpu").value is True:
        return "vgpu"
    return None


@control(
    id="GPU-012",
    title="Tenants of different trust or sensitivity share GPUs through MIG or vGPU",
    plane=Plane.GPU,
    severity=Severity.HIGH,
    failure_mode="A confidential or regulated tenant's GPU is partitioned with other tenants: "
    "MIG cannot run in confidential-computing mode, and partitions still share the driver, "
    "PCIe and an L2 timing channel, so an untrusted neighbour can observe or attack it.",
    remediation="Give confidential and regulated tenants whole GPUs on nodes of their own (CC "
    "on where needed); keep untrusted tenants on whole GPUs; share MIG/vGPU only between "
    "tenants of public or internal data that accept the residual risks.",
    references=(_MIG_GUIDE, _MIG_L2_CHANNEL, _CC_R590),
)
def partition_cotenancy(snap: Snapshot) -> Iterator[Outcome]:
    # Time-slicing/MPS across tenants is GPU-001's (no-soft-sharing); here only when it puts a
    # confidential or regulated tenant's GPU in common with others.
    scoped = [
        (v, m)
        for v in snap.nodes
        if v.multi_tenant
        and (m := _mechanism(v))
        and (m in ("mig", "vgpu") or not all(may_share_gpu(t) for t in v.tenants))
    ]
    if not scoped:
        yield not_applicable("no node shares GPUs between tenants through MIG or vGPU")
    for view, mechanism in scoped:
        names = tenant_names(view)
        evidence = {"sharing": mechanism, "tenants": names}
        ptr = (*view.pointer[:2], "sharing")
        sensitive = [t.name for t in view.tenants if not may_share_gpu(t)]
        untrusted = [t.name for t in view.tenants if t.trust is Trust.UNTRUSTED]
        if sensitive:
            others = [n for n in names if n not in sensitive] or ["each other"]
            worst = bool(untrusted)
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"{joined(sensitive)} (confidential/regulated data) share GPUs through "
                f"{mechanism} with {joined(others)}"
                + (f"; untrusted: {joined(untrusted)}" if worst else ""),
                {
                    **evidence,
                    "sensitive": sensitive,
                    **rule_evidence("confidential-no-gpu-sharing"),
                },
                ptr,
                Severity.CRITICAL if worst else None,
            )
        elif untrusted:
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"untrusted tenant(s) {joined(untrusted)} share GPUs through {mechanism} with "
                f"{joined([n for n in names if n not in untrusted] or ['each other'])}: "
                f"whole GPUs are recommended ({_RESIDUAL})",
                {**evidence, "untrusted": untrusted, **rule_evidence("untrusted-whole-gpus")},
                ptr,
                Severity.LOW,
            )
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                f"{mechanism} co-tenancy of {joined(names)} (public/internal data, no "
                f"untrusted tenant); {_RESIDUAL}",
                {**evidence, **rule_evidence("hard-sharing")},
                ptr,
            )
