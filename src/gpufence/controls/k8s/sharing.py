"""GPU sharing between tenants (K8S-001, K8S-002, K8S-013): time-slicing, MPS, DRA sharing, HAMi."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gpufence.controls._common import joined
from gpufence.controls.engine import Outcome
from gpufence.controls.k8s._base import (
    _DEVICE_PLUGIN,
    _DRA_DRIVER,
    _HAMI,
    _QUOTA,
    CLUSTER,
    WORKLOAD_KINDS,
    _k8s_control,
    _not_applicable,
    _not_evaluated,
)
from gpufence.kubernetes.view import (
    DRA_DRIVER,
    HAMI_NODE_ANNOTATION,
    K8sView,
    PodSpec,
)
from gpufence.model.findings import Plane, Severity, Status
from gpufence.policy import rule_evidence

# -- GPU sharing ---------------------------------------------------------------------------


@_k8s_control(
    id="K8S-001",
    title="Time-slicing, MPS or HAMi shares GPUs of a node between tenant namespaces",
    plane=Plane.K8S,
    severity=Severity.CRITICAL,
    failure_mode="Replicas of one GPU handed to pods of different tenants share its memory and "
    "fault domain (time-slicing), its MPS server, or HAMi's software limits (bypassable): one "
    "tenant can read, corrupt or stall another.",
    remediation="Keep time-slicing/MPS configs (nvidia.com/device-plugin.config), DRA GpuConfig "
    "sharing and HAMi GPU shares to nodes that only one tenant can reach (taints + node "
    "affinity), or use MIG instances or whole GPUs.",
    references=(_DEVICE_PLUGIN, "https://docs.nvidia.com/deploy/mps/", _DRA_DRIVER, _HAMI),
)
def soft_sharing_across_tenants(view: K8sView) -> Iterator[Outcome]:
    why = view.state.why_unreadable(
        "Namespace",
        "Node",
        "ConfigMap",
        "ClusterPolicy.nvidia.com",
        "ResourceClaim",
        "ResourceClaimTemplate",
        "DeviceClass",
        *WORKLOAD_KINDS,
    )
    if why:
        yield _not_evaluated(CLUSTER, f"cannot tell which tenants share GPUs: {why}")
        return
    gpu_pods = [p for p in view.tenant_pods if view.uses_gpu(p)]
    found = [
        *_device_plugin_sharing(view, gpu_pods),
        *_dra_sharing(view),
        *_hami_sharing(view, gpu_pods),
    ]
    yield from found or [
        _not_applicable(
            "no device-plugin config, node label, DRA GpuConfig or HAMi share enables GPU sharing"
        )
    ]


def _reach(view: K8sView, pods: Iterable[PodSpec]) -> dict[str, set[str]]:
    """Node name -> tenants whose ``pods`` the scheduler could place there."""
    reach: dict[str, set[str]] = {}
    for pod in pods:
        tenant = view.tenant_of(pod.namespace)
        for node in view.candidate_nodes(pod):
            reach.setdefault(node.name, set()).add(str(tenant))
    return reach


def _device_plugin_sharing(view: K8sView, gpu_pods: list[PodSpec]) -> Iterator[Outcome]:
    if view.gpu_nodes:
        reach = _reach(view, gpu_pods)
        for node in view.gpu_nodes:
            sharing = view.sharing_on(node)
            if sharing is None or sharing.strategy == "none":
                if HAMI_NODE_ANNOTATION not in node.annotations:
                    yield Outcome(Status.PASS, node.ref, "no time-slicing or MPS on this node")
                continue
            tenants = sorted(reach.get(node.name, ()))
            evidence = {
                "sharing": sharing.strategy,
                "replicas": sharing.replicas,
                "config": sharing.source,
                "tenants": tenants,
                **rule_evidence("no-soft-sharing"),
            }
            status = Status.FAIL if len(tenants) > 1 else Status.PASS
            yield Outcome(
                status,
                node.ref,
                f"{sharing.strategy} ({sharing.source}) with GPU pods of "
                f"{len(tenants)} tenant(s): {joined(tenants)}",
                evidence,
            )
        return
    sharing = view.sharing_on(None)
    if sharing is None or sharing.strategy == "none":
        return
    tenants = sorted({t for p in gpu_pods if (t := view.tenant_of(p.namespace))})
    yield Outcome(
        Status.FAIL if len(tenants) > 1 else Status.PASS,
        sharing.owner_ref or CLUSTER,
        f"{sharing.strategy} ({sharing.source}) applies to every GPU node (no Node objects were "
        f"scanned) and tenants {joined(tenants)} request GPUs",
        {"sharing": sharing.strategy, "tenants": tenants, **rule_evidence("no-soft-sharing")},
    )


def _dra_sharing(view: K8sView) -> Iterator[Outcome]:
    """NVIDIA DRA driver GpuConfig sharing: the pods holding one claim share its GPU."""
    for shared in view.dra_sharing:
        claim = shared.owner
        users = view.claim_users(claim)
        tenants = sorted({str(view.tenant_of(p.namespace)) for p in users})
        per_pod = claim.kind == "ResourceClaimTemplate"
        scope = (
            "each pod gets its own claim (its containers share the GPU)"
            if per_pod
            else f"{len(users)} pod spec(s) hold the claim"
        )
        yield Outcome(
            Status.FAIL if len(tenants) > 1 else Status.PASS,
            claim.ref,
            f"DRA {shared.strategy} sharing ({DRA_DRIVER} GpuConfig): {scope}; tenant(s) "
            f"{joined(tenants)}",
            {
                "sharing": f"dra-{shared.strategy}",
                "tenants": tenants,
                "pods": [p.owner.ref for p in users][:20],
                **rule_evidence("no-soft-sharing"),
            },
            shared.pointer,
        )


def _hami_sharing(view: K8sView, gpu_pods: list[PodSpec]) -> Iterator[Outcome]:
    """HAMi: pods on a HAMi node share its GPUs unless each takes whole GPUs."""
    shared = [p for p in gpu_pods if (p.hami or view.hami_nodes) and not p.hami_exclusive]
    if not shared:
        return
    nodes = view.hami_nodes or (view.gpu_nodes if any(p.hami for p in shared) else ())
    if nodes:
        reach = _reach(view, shared)
        for node in nodes:
            tenants = sorted(reach.get(node.name, ()))
            yield Outcome(
                Status.FAIL if len(tenants) > 1 else Status.PASS,
                node.ref,
                f"HAMi GPU shares (nvidia.com/gpumem, gpucores) with GPU pods of "
                f"{len(tenants)} tenant(s): {joined(tenants)}",
                {"sharing": "hami", "tenants": tenants, **rule_evidence("no-soft-sharing")},
            )
        return
    tenants = sorted({str(view.tenant_of(p.namespace)) for p in shared if p.hami})
    yield Outcome(
        Status.FAIL if len(tenants) > 1 else Status.PASS,
        CLUSTER,
        f"HAMi GPU shares requested by tenant(s) {joined(tenants)} (no Node objects were "
        "scanned: any two may land on one GPU)",
        {"sharing": "hami", "tenants": tenants, **rule_evidence("no-soft-sharing")},
    )


def _sharing_configs(view: K8sView) -> Iterator[Outcome] | list[Any]:
    why = view.state.why_unreadable("ConfigMap", "ClusterPolicy.nvidia.com")
    if why:
        return iter([_not_evaluated(CLUSTER, f"device-plugin configs unknown: {why}")])
    shared = [c for c in view.device_plugin_configs if c.strategy != "none"]
    if not shared:
        return iter([_not_applicable("no device-plugin config enables time-slicing or MPS")])
    return shared


@_k8s_control(
    id="K8S-002",
    title="Time-slicing admits one pod on several replicas of one GPU",
    plane=Plane.K8S,
    severity=Severity.MEDIUM,
    failure_mode="With failRequestsGreaterThanOne off, a pod asking for 2 replicas may get two "
    "slices of the same GPU, believing it has two GPUs, and crowds out the tenants sharing it.",
    remediation="Set sharing.timeSlicing.failRequestsGreaterThanOne: true in the device-plugin "
    "config (the NVIDIA device plugin recommends it; MPS forces it).",
    references=(_DEVICE_PLUGIN,),
)
def fail_requests_greater_than_one(view: K8sView) -> Iterator[Outcome]:
    configs = _sharing_configs(view)
    if not isinstance(configs, list):
        yield from configs
        return
    for cfg in configs:
        if cfg.strategy == "mps":
            yield Outcome(Status.PASS, cfg.owner.ref, f"{cfg.label}: MPS forces it on")
            continue
        on = cfg.flag("timeSlicing", "failRequestsGreaterThanOne") is True
        yield Outcome(
            Status.PASS if on else Status.FAIL,
            cfg.owner.ref,
            f"{cfg.label}: failRequestsGreaterThanOne is {'on' if on else 'off (default false)'}",
            {"config": cfg.key, "replicas": cfg.replicas("timeSlicing")},
            (*cfg.pointer,),
        )


@_k8s_control(
    id="K8S-013",
    title="Time-sliced GPUs are advertised under the exclusive resource name",
    plane=Plane.K8S,
    severity=Severity.LOW,
    failure_mode="Without renameByDefault, a time-sliced replica is requested as nvidia.com/gpu, "
    "so tenants, quotas and admission rules cannot tell a shared slice from a whole GPU.",
    remediation="Set sharing.timeSlicing.renameByDefault: true so shared GPUs appear as "
    "nvidia.com/gpu.shared, and quota that name separately.",
    references=(_DEVICE_PLUGIN, _QUOTA),
)
def shared_gpus_not_renamed(view: K8sView) -> Iterator[Outcome]:
    configs = _sharing_configs(view)
    if not isinstance(configs, list):
        yield from configs
        return
    for cfg in configs:
        kind = "mps" if cfg.strategy == "mps" else "timeSlicing"
        renamed = cfg.flag(kind, "renameByDefault") is True
        yield Outcome(
            Status.PASS if renamed else Status.FAIL,
            cfg.owner.ref,
            f"{cfg.label}: renameByDefault is {'on' if renamed else 'off'}",
            {"config": cfg.key},
            (*cfg.pointer,),
        )
