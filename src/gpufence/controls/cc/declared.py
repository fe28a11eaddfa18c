"""Confidential-computing controls: CC where weights need it, on silicon that has it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from gpufence.catalog import Architecture, CcLevel, GpuModel
from gpufence.controls._common import fact_evidence, joined, not_applicable, unknown_fact
from gpufence.controls.engine import Outcome, control
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.inventory import CcMode, CcMultiGpuMode, Ownership
from gpufence.model.snapshot import NodeView, Snapshot
from gpufence.policy import rule_evidence

_CC_DOCS = "https://docs.nvidia.com/confidential-computing/"
_CC_PLATFORMS = "https://docs.nvidia.com/confidential-computing/containers/supported-platforms"
_NVIDIA_CC_BLOG = (
    "https://developer.nvidia.com/blog/confidential-computing-on-h100-gpus-for-secure-"
    "and-trustworthy-ai/"
)


def _sensitive(view: NodeView) -> list[str]:
    return [t.name for t in view.tenants if t.data_sensitivity.needs_protection]


def _no_cc(gpu: GpuModel, what: str = "confidential computing") -> str:
    """Why ``gpu`` cannot provide ``what``: absent from the silicon, or not validated by NVIDIA."""
    if gpu.architecture in (Architecture.HOPPER, Architecture.BLACKWELL):
        return (
            f"{gpu.name} is not on NVIDIA's validated {what} platforms "
            "(Hopper/Blackwell silicon, unverified: see `gpufence catalog`)"
        )
    return f"{gpu.name} has no {what}"


def needs_cc(view: NodeView) -> bool:
    """Confidential/regulated tenant on shared (multi-tenant) or rented capacity."""
    shared_or_rented = view.multi_tenant or view.site.ownership is Ownership.RENTED
    return bool(_sensitive(view)) and shared_or_rented


def _why(view: NodeView) -> str:
    reasons = []
    if view.multi_tenant:
        reasons.append(f"shared with {len(view.tenants) - 1} other tenant(s)")
    if view.site.ownership is Ownership.RENTED:
        reasons.append(f"site {view.site.name} is rented capacity")
    return " and ".join(reasons)


@control(
    id="CC-001",
    title="Confidential weights on shared or rented capacity without CC on",
    plane=Plane.CC,
    severity=Severity.CRITICAL,
    failure_mode="Model weights sit in plaintext in HBM and cross PCIe in the clear, readable by "
    "the host, the hypervisor owner or a co-tenant who escapes: the costliest failure in the "
    "field.",
    remediation="Run these tenants on Hopper or Blackwell GPUs with confidential computing on "
    "(nvidia.com/cc.mode=on) inside a CVM (TDX/SEV-SNP), and release keys only after attestation.",
    references=(_CC_DOCS, _CC_PLATFORMS, _NVIDIA_CC_BLOG),
)
def weights_without_cc(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [v for v in snap.nodes if needs_cc(v)]
    colocated = [
        v
        for v in snap.nodes
        if not needs_cc(v) and _sensitive(v) and v.site.ownership is Ownership.COLOCATION
    ]
    if not scoped and not colocated:
        yield not_applicable("no confidential or regulated tenant on shared or rented capacity")
    for view in scoped:
        yield _cc_on(view, _why(view), "cc-shared-or-rented", None)
    for view in colocated:
        # Advisory (rule cc-colocation): a recommendation, reported at low severity.
        yield _cc_on(view, f"site {view.site.name} is colocation", "cc-colocation", Severity.LOW)


def _cc_on(view: NodeView, why: str, rule_id: str, severity: Severity | None) -> Outcome:
    judged = rule_evidence(rule_id)
    context = {"tenants": _sensitive(view), "why_cc_is_needed": why, **judged}
    if not view.gpu.cc.supports_cc:
        return Outcome(
            Status.FAIL,
            view.resource,
            f"{joined(_sensitive(view))} need CC ({why}) but {_no_cc(view.gpu)}",
            {**context, "gpu_model": view.gpu.key, "gpu_cc": view.gpu.cc.value},
            view.pointer,
            severity,
        )
    fact = view.gpu_fact("cc_mode")
    if not fact.known:
        unknown = unknown_fact(view.resource, "CC mode", fact)
        return Outcome(
            unknown.status,
            unknown.resource,
            unknown.message,
            {**unknown.evidence, **judged},
            unknown.pointer,
            severity,
        )
    on = fact.value is CcMode.ON
    return Outcome(
        Status.PASS if on else Status.FAIL,
        view.resource,
        f"CC mode is {fact.value.value if isinstance(fact.value, CcMode) else fact.value}"
        f" for {joined(_sensitive(view))} ({why})",
        {**context, **fact_evidence(cc_mode=fact)},
        fact.pointer,
        severity,
    )


@control(
    id="CC-002",
    title="Confidential computing declared on silicon without it",
    plane=Plane.CC,
    severity=Severity.HIGH,
    failure_mode="A CC mode is believed on where the GPU cannot provide it (Ampere, Ada, "
    "GeForce), so data the operator thinks is protected is in plaintext.",
    remediation="Move CC workloads to Hopper (H100/H200) or Blackwell GPUs; on Hopper use "
    "protected PCIe for multi-GPU, on Blackwell multi-GPU CC with NVLink encryption.",
    references=(_CC_PLATFORMS, _CC_DOCS),
)
def cc_without_silicon(snap: Snapshot) -> Iterator[Outcome]:
    scoped = []
    for view in snap.nodes:
        mode = view.gpu_fact("cc_mode").value
        multi = view.gpu_fact("cc_multi_gpu").value
        if mode in (CcMode.ON, CcMode.DEVTOOLS) or multi not in (None, CcMultiGpuMode.NONE):
            scoped.append((view, multi))
    if not scoped:
        yield not_applicable("no node declares a CC mode")
    for view, multi in scoped:
        level = view.gpu.cc
        problems = []
        if not level.supports_cc:
            problems.append(_no_cc(view.gpu))
        elif multi is CcMultiGpuMode.PROTECTED_PCIE and level is not CcLevel.PROTECTED_PCIE:
            problems.append(
                f"protected PCIe is a Hopper HGX mode; {view.gpu.name} is {level.value}"
            )
        elif multi is CcMultiGpuMode.NVLE and level is not CcLevel.MULTI_GPU_TEE_IO:
            problems.append(
                f"NVLink encryption needs Blackwell multi-GPU CC; {view.gpu.name} is {level.value}"
            )
        yield Outcome(
            Status.FAIL if problems else Status.PASS,
            view.resource,
            "; ".join(problems) or f"{view.gpu.name} supports the declared CC mode",
            {
                "gpu_model": view.gpu.key,
                "gpu_cc": level.value,
                **fact_evidence(
                    cc_mode=view.gpu_fact("cc_mode"), cc_multi_gpu=view.gpu_fact("cc_multi_gpu")
                ),
                **rule_evidence("cc-shared-or-rented"),
            },
            (*view.pointer[:2], "gpu_state"),
        )


@control(
    id="CC-003",
    title="Multi-GPU confidential job without protected PCIe or multi-GPU CC",
    plane=Plane.CC,
    severity=Severity.CRITICAL,
    failure_mode="A confidential job spanning several GPUs exchanges tensors over NVLink/PCIe "
    "between GPUs; without protected PCIe (Hopper) or NVLink encryption (Blackwell) that "
    "traffic leaves the trust boundary in the clear.",
    remediation="On HGX H100/H200 set nvidia.com/cc.mode=ppcie (all 8 GPUs and 4 NVSwitches to "
    "one CVM); on HGX B200/B300 use multi-GPU passthrough CC; or run single-GPU jobs.",
    references=(_CC_PLATFORMS, _CC_DOCS),
)
def multi_gpu_cc(snap: Snapshot) -> Iterator[Outcome]:
    scoped = []
    for view in snap.nodes:
        jobs = [
            w
            for w in view.workloads
            if w.gpus_per_job > 1 and snap.tenants[w.tenant].data_sensitivity.needs_protection
        ]
        cc_on = view.gpu_fact("cc_mode").value is CcMode.ON
        if jobs and (needs_cc(view) or cc_on):
            scoped.append((view, jobs))
    if not scoped:
        yield not_applicable("no multi-GPU confidential job needs CC")
    for view, jobs in scoped:
        who = joined(f"{w.tenant} ({w.gpus_per_job} GPUs/job)" for w in jobs)
        level = view.gpu.cc
        if not level.supports_multi_gpu_cc:
            yield Outcome(
                Status.FAIL,
                view.resource,
                f"{who}: {_no_cc(view.gpu, 'multi-GPU confidential computing')}",
                {"gpu_model": view.gpu.key, "gpu_cc": level.value, **rule_evidence("multi-gpu-cc")},
                view.pointer,
            )
            continue
        expected = (
            CcMultiGpuMode.PROTECTED_PCIE
            if level is CcLevel.PROTECTED_PCIE
            else CcMultiGpuMode.NVLE
        )
        fact = view.gpu_fact("cc_multi_gpu")
        if not fact.known:
            unknown = unknown_fact(view.resource, "multi-GPU CC mode", fact)
            yield replace(unknown, evidence={**unknown.evidence, **rule_evidence("multi-gpu-cc")})
            continue
        ok = fact.value is expected
        yield Outcome(
            Status.PASS if ok else Status.FAIL,
            view.resource,
            f"{who}: multi-GPU CC mode is "
            f"{fact.value.value if isinstance(fact.value, CcMultiGpuMode) else fact.value}"
            f", needs {expected.value}",
            {
                "expected": expected.value,
                **fact_evidence(cc_multi_gpu=fact),
                **rule_evidence("multi-gpu-cc"),
            },
            fact.pointer,
        )


@control(
    id="CC-004",
    title="GPU in CC devtools mode serves tenants",
    plane=Plane.CC,
    severity=Severity.HIGH,
    failure_mode="Devtools mode keeps the CC data path but disables protections so profilers "
    "and debuggers work; attestation reports it, and secrets must never be released to it.",
    remediation="Set nvidia.com/cc.mode=on (not devtools) on every node serving tenants; keep "
    "devtools to isolated debugging hosts.",
    references=(_CC_DOCS,),
)
def devtools_mode(snap: Snapshot) -> Iterator[Outcome]:
    scoped = [v for v in snap.nodes if v.gpu_fact("cc_mode").known and v.tenants]
    if not scoped:
        yield not_applicable("no tenant node declares a CC mode")
    for view in scoped:
        fact = view.gpu_fact("cc_mode")
        devtools = fact.value is CcMode.DEVTOOLS
        yield Outcome(
            Status.FAIL if devtools else Status.PASS,
            view.resource,
            "CC devtools mode on a tenant node" if devtools else "CC mode is not devtools",
            fact_evidence(cc_mode=fact),
            (*view.pointer, "gpu_state", "cc_mode"),
        )
