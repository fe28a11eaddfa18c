"""CC modes as NVIDIA ships them: one CVM per CC node, and no MIG inside confidential computing."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.catalog import Architecture
from gpufence.controls._common import fact_evidence, joined, not_applicable, tenant_names
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import CcMode, CcMultiGpuMode, SharingMode
from gpufence.model.snapshot import NodeView, Snapshot
from gpufence.policy import rule_evidence

_R580 = "https://docs.nvidia.com/confidential-computing/release-notes/r580-trd1"
_R590 = "https://docs.nvidia.com/confidential-computing/release-notes/r590-trd1"
_PPCIE = (
    "https://docs.nvidia.com/attestation/attestation-client-tools-ppcie/latest/"
    "ppcie_introduction.html"
)
_COCO_PLATFORMS = (
    "https://docs.nvidia.com/datacenter/cloud-native/confidential-containers/latest/"
    "supported-platforms.html"
)

_MULTI = (CcMultiGpuMode.PROTECTED_PCIE, CcMultiGpuMode.NVLE)


def _cc_declared(view: NodeView) -> bool:
    return view.gpu_fact("cc_mode").value in (CcMode.ON, CcMode.DEVTOOLS)


@control(
    id="CC-008",
    title="Node in confidential-computing mode serves more than one tenant",
    plane=Plane.CC,
    severity=Severity.HIGH,
    failure_mode="Protected PCIe and multi-GPU passthrough put every GPU and NVSwitch of the node "
    "in one confidential VM, and NVIDIA's Confidential Containers assign all GPUs of a CC node "
    "to one VM: a second tenant on the node is inside the first one's trust boundary, or the "
    "node runs a configuration NVIDIA does not support.",
    remediation="Dedicate each CC node to one tenant (taint it for that tenant) and run that "
    "tenant's GPU work in the node's one confidential VM; move other tenants to other nodes.",
    references=(_PPCIE, _COCO_PLATFORMS, _R590),
)
def cc_node_one_tenant(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [
        v for v in snap.nodes if _cc_declared(v) or v.gpu_fact("cc_multi_gpu").value in _MULTI
    ]
    if not scoped:
        yield not_applicable("no node declares a CC mode")
    for view in scoped:
        multi = view.gpu_fact("cc_multi_gpu")
        whole_node = multi.value in _MULTI
        evidence = {
            "tenants": tenant_names(view),
            **fact_evidence(cc_mode=view.gpu_fact("cc_mode"), cc_multi_gpu=multi),
            **rule_evidence("cc-one-cvm-per-node"),
        }
        if not view.multi_tenant:
            yield Outcome(
                Status.PASS, view.resource, f"CC node serves {joined(tenant_names(view))}", evidence
            )
            continue
        how = (
            f"{multi.value.value if isinstance(multi.value, CcMultiGpuMode) else multi.value} "
            "puts all GPUs and NVSwitches of the node in one confidential VM"
            if whole_node
            else "NVIDIA Confidential Containers assign all GPUs of a CC node to one "
            "confidential VM (several single-GPU CVMs per node exist only for plain VMs)"
        )
        yield Outcome(
            Status.FAIL,
            view.resource,
            f"CC node serves tenants {joined(tenant_names(view))}: {how}",
            evidence,
            view.pointer,
            Severity.CRITICAL if whole_node else None,
        )


def _mig_on(view: NodeView) -> bool | None:
    fact = view.gpu_fact("mig").value
    if fact is True or view.pool.sharing is SharingMode.MIG:
        return True
    if fact is False:
        return False
    return None if view.gpu.mig_capable else False


def _released_modes(view: NodeView) -> str:
    if view.gpu.architecture is Architecture.BLACKWELL:
        return (
            "NVIDIA's Blackwell CC release notes name single-GPU passthrough (R580 TRD1) and "
            "multiple-GPU passthrough (R590 TRD1), no MIG mode"
        )
    return (
        "NVIDIA's released CC modes for Hopper are single-GPU passthrough and protected PCIe "
        "only, without MIG"
    )


@control(
    id="CC-009",
    title="MIG declared together with confidential computing",
    plane=Plane.CC,
    severity=Severity.HIGH,
    failure_mode="MIG is not part of NVIDIA's released confidential-computing modes: a node "
    "that declares both either does not run CC as believed or runs an unsupported mode, and "
    "tenants sharing its partitions are not protected from each other or the host.",
    remediation="Run CC nodes with MIG off (whole GPUs, single-GPU passthrough or multi-GPU "
    "CC) and keep MIG to pools without confidential tenants.",
    references=(_R580, _R590, "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/"),
)
def mig_with_cc(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [v for v in snap.nodes if _cc_declared(v) or _mig_on(v)]
    if not scoped:
        yield not_applicable("no node declares MIG or a CC mode")
    for view in scoped:
        cc = view.gpu_fact("cc_mode")
        mig = _mig_on(view)
        evidence = {
            "gpu_model": view.gpu.key,
            "sharing": view.pool.sharing.value,
            **fact_evidence(cc_mode=cc, mig=view.gpu_fact("mig")),
            **rule_evidence("mig-no-cc"),
        }
        if mig and _cc_declared(view):
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"MIG and CC mode {cc.value.value if isinstance(cc.value, CcMode) else cc.value} "
                f"on {view.gpu.name}: {_released_modes(view)}",
                evidence,
                cc.pointer,
            )
        elif mig is None or (mig and not cc.known and view.gpu.cc.supports_cc):
            missing = "MIG mode" if mig is None else "CC mode"
            yield Outcome(
                Status.NOT_EVALUATED,
                view.resource,
                f"{missing} is unknown; MIG with CC would be a FAIL ({_released_modes(view)})",
                {**evidence, "missing": missing},
                view.pointer,
            )
        else:
            yield Outcome(
                Status.PASS,
                view.resource,
                "MIG without CC" if mig else "CC without MIG",
                evidence,
            )
