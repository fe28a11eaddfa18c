"""Kubernetes controls for confidential tenants (K8S-012, K8S-014): CC nodes and NVIDIA
Confidential Containers, as NVIDIA's Confidential Containers docs describe them."""

from __future__ import annotations

from collections.abc import Iterator

from gpufence.controls._common import joined
from gpufence.controls.engine import Outcome
from gpufence.controls.k8s._base import (
    _CC,
    CLUSTER,
    WORKLOAD_KINDS,
    _k8s_control,
    _not_applicable,
    _not_evaluated,
)
from gpufence.kubernetes.view import (
    CC_MODE_LABEL,
    CC_MODE_STATE_LABEL,
    COCO_RUNTIME_CLASSES,
    PGPU_RESOURCE,
    K8sView,
    PodSpec,
    dig,
)
from gpufence.model.findings import Plane, Severity, Status
from gpufence.policy import rule_evidence

_COCO_WORKLOADS = (
    "https://docs.nvidia.com/datacenter/cloud-native/confidential-containers/latest/"
    "configure-workloads.html"
)
_COCO_SAMPLE = (
    "https://docs.nvidia.com/datacenter/cloud-native/confidential-containers/latest/"
    "run-sample-workload.html"
)


def _pins_cc_on(pod: PodSpec) -> bool:
    if pod.node_selector().get(CC_MODE_LABEL) == "on":
        return True
    terms = pod.required_node_terms()
    return bool(terms) and all(
        any(
            dig(e, "key") == CC_MODE_LABEL
            and dig(e, "operator") == "In"
            and set(dig(e, "values") or []) == {"on"}
            for e in dig(t, "matchExpressions") or []
        )
        for t in terms
    )


@_k8s_control(
    id="K8S-012",
    title="Confidential tenant's GPU pod can run on a node without CC mode on",
    plane=Plane.K8S,
    severity=Severity.CRITICAL,
    failure_mode="A confidential tenant's GPU pod lands on a node whose GPUs are not in CC mode, "
    "so its model weights sit in plaintext GPU memory readable by the host.",
    remediation="Pin confidential tenants' GPU pods to nvidia.com/cc.mode=on nodes (nodeSelector "
    "or required node affinity) and check nvidia.com/cc.mode.state=on on those nodes.",
    references=(_CC, "https://docs.nvidia.com/confidential-computing/"),
)
def confidential_pod_off_cc_node(view: K8sView) -> Iterator[Outcome]:
    why = view.state.why_unreadable("Namespace", "Node", *WORKLOAD_KINDS)
    if why:
        yield _not_evaluated(CLUSTER, f"cannot place confidential GPU pods: {why}")
        return
    pods = [p for p in view.tenant_pods if view.confidential(p.namespace) and view.uses_gpu(p)]
    if not pods:
        yield _not_applicable("no GPU pod of a confidential or regulated tenant")
        return
    for pod in pods:
        pinned = _pins_cc_on(pod)
        candidates = view.candidate_nodes(pod)
        bad = [
            n.name
            for n in candidates
            if n.labels.get(CC_MODE_LABEL) != "on"
            or n.labels.get(CC_MODE_STATE_LABEL, "on") != "on"
        ]
        if bad:
            fail, message = True, f"can run on GPU node(s) without CC mode on: {joined(bad[:5])}"
        elif candidates:
            fail, message = False, "every scanned GPU node it fits has nvidia.com/cc.mode=on"
        elif pinned:
            fail, message = False, "pinned to nodes with nvidia.com/cc.mode=on"
        else:
            fail, message = True, "not pinned to nvidia.com/cc.mode=on nodes"
        yield Outcome(
            Status.FAIL if fail else Status.PASS,
            pod.owner.ref,
            message,
            {
                "tenant": view.tenant_of(pod.namespace),
                "pinned": pinned,
                "bad_nodes": bad[:20],
                **rule_evidence("cc-containers-runtime"),
            },
            (*pod.pointer, "nodeSelector"),
        )


@_k8s_control(
    id="K8S-014",
    title="Confidential tenant's GPU pod does not run in a Confidential Container",
    plane=Plane.K8S,
    severity=Severity.CRITICAL,
    failure_mode="A confidential tenant's GPU pod runs under runc or non-confidential Kata: no "
    "confidential VM, no GPU in CC mode, so its weights are readable by the host even on a "
    "node labelled for CC.",
    remediation="Set runtimeClassName: kata-qemu-nvidia-gpu-snp (AMD SEV-SNP) or "
    "kata-qemu-nvidia-gpu-tdx (Intel TDX) and request GPUs as nvidia.com/pgpu (the Kata "
    "sandbox device plugin's resource), one CVM per CC node.",
    references=(_COCO_WORKLOADS, _COCO_SAMPLE),
)
def confidential_pod_without_coco(view: K8sView) -> Iterator[Outcome]:
    why = view.state.why_unreadable("Namespace", *WORKLOAD_KINDS)
    if why:
        yield _not_evaluated(CLUSTER, f"cannot find confidential GPU pods: {why}")
        return
    pods = [p for p in view.tenant_pods if view.confidential(p.namespace) and view.uses_gpu(p)]
    if not pods:
        yield _not_applicable("no GPU pod of a confidential or regulated tenant")
        return
    for pod in pods:
        yield _coco_outcome(view, pod)


def _coco_outcome(view: K8sView, pod: PodSpec) -> Outcome:
    runtime = pod.runtime_class
    plain = sorted(r for r in pod.gpu_resources if r == "nvidia.com/gpu" or "mig-" in r)
    problems = []
    if runtime not in COCO_RUNTIME_CLASSES:
        problems.append(
            f"runtimeClassName is {runtime or 'unset (runc)'}, not "
            f"{' or '.join(COCO_RUNTIME_CLASSES)}"
        )
    if plain:
        problems.append(
            f"requests {joined(plain)} from the regular device plugin, not {PGPU_RESOURCE}"
        )
    return Outcome(
        Status.FAIL if problems else Status.PASS,
        pod.owner.ref,
        "; ".join(problems) or f"runs in a Confidential Container ({runtime})",
        {
            "tenant": view.tenant_of(pod.namespace),
            "runtime_class": runtime,
            "gpu_resources": sorted(pod.gpu_resources),
            **rule_evidence("cc-containers-runtime"),
        },
        (*pod.pointer, "runtimeClassName"),
    )
