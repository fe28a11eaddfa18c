"""Kubernetes GPU-tenancy controls (K8S-*), over manifests or a live cluster.

Each check is a pure function of a :class:`~gpufence.kubernetes.view.K8sView`.
`gpufence k8s scan` runs them on what it read (:data:`VIEW_CHECKS`); as registered controls
they run inside `gpufence audit` on Kubernetes evidence (``gpufence k8s scan --evidence-out``),
and say NOT_EVALUATED when there is none. Anything a scan could not read (403, not listed) makes
the controls that need it NOT_EVALUATED, never PASS.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from gpufence import __version__
from gpufence.controls._common import joined
from gpufence.controls.engine import Control, ControlMeta, Outcome, control, evaluate
from gpufence.kubernetes.objects import ClusterState, K8sObject, state_from_raw
from gpufence.kubernetes.view import (
    DRA_ADMIN_LABEL,
    DRA_ADMIN_LABEL_OLD,
    DRA_DRIVER,
    HAMI_NODE_ANNOTATION,
    NETWORKS_ANNOTATION,
    NVIDIA_ENV_VARS,
    PSA_ENFORCE_LABEL,
    SIGSTORE_INCLUDE_LABEL,
    TENANT_LABEL,
    K8sView,
    PodSpec,
    dig,
    is_nvidia_host_path,
)
from gpufence.model.evidence import CollectorName
from gpufence.model.findings import AuditResult, FindingLocation, Plane, Severity, Status
from gpufence.model.snapshot import Snapshot
from gpufence.policy import rule_evidence

__all__ = ["VIEW_CHECKS", "ViewCheck", "scan_cluster", "views_from_snapshot"]

ViewCheck = Callable[[K8sView], Iterable[Outcome]]
VIEW_CHECKS: dict[str, tuple[ControlMeta, ViewCheck]] = {}
"""Control ID -> (metadata, check over a K8sView), for `gpufence k8s scan`."""

CLUSTER = "k8s/cluster"
WORKLOAD_KINDS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)

_DEVICE_PLUGIN = "https://github.com/NVIDIA/k8s-device-plugin#shared-access-to-gpus"
_TOOLKIT = (
    "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/"
    "docker-specialized.html"
)
_PSA = "https://kubernetes.io/docs/concepts/security/pod-security-admission/"
_NETPOL = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
_QUOTA = "https://kubernetes.io/docs/concepts/policy/resource-quotas/"
_DRA = "https://kubernetes.io/docs/concepts/scheduling-eviction/dynamic-resource-allocation/"
_SIGSTORE = "https://docs.sigstore.dev/policy-controller/overview/"
_KYVERNO = "https://kyverno.io/docs/policy-types/cluster-policy/verify-images/"
_MULTUS = "https://github.com/k8snetworkplumbingwg/multus-cni"
_CC = "https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/gpu-operator-confidential-containers.html"
_DRA_DRIVER = "https://github.com/NVIDIA/k8s-dra-driver-gpu"
_HAMI = "https://github.com/Project-HAMi/HAMi"


def views_from_snapshot(snap: Snapshot) -> list[K8sView]:
    """One view per Kubernetes evidence document, with the inventory's tenants."""
    tenants = {t.name: t.data_sensitivity.value for t in snap.inventory.tenants}
    return [
        K8sView(state_from_raw(doc.raw), tenants)
        for doc in snap.evidence
        if doc.collector == CollectorName.KUBERNETES
    ]


def _k8s_control(**meta: Any) -> Callable[[ViewCheck], Control]:
    """Register a view check for `k8s scan` and wrap it as a snapshot control for `audit`."""

    def wrap(check: ViewCheck) -> Control:
        def over_snapshot(snap: Snapshot) -> Iterator[Outcome]:
            views = views_from_snapshot(snap)
            if not views:
                gap = snap.evidence_gap("cluster/kubernetes")
                yield Outcome(
                    Status.NOT_EVALUATED,
                    CLUSTER,
                    (f"no current Kubernetes evidence: {gap}" if gap else "no Kubernetes evidence")
                    + "; run `gpufence k8s scan DIR|--live --evidence-out FILE` and pass it "
                    "with --evidence",
                    {"missing": "kubernetes evidence"},
                )
            for view in views:
                # Pointers in k8s outcomes address manifest files, not the inventory: the
                # finding is located at the object in its manifest (as the scan recorded it).
                for o in check(view):
                    obj = view.state.by_ref.get(o.resource)
                    where = (
                        FindingLocation(file=obj.source, line=obj.line, column=obj.column or 1)
                        if obj is not None and obj.line is not None and not view.state.live
                        else None
                    )
                    yield dataclasses.replace(o, pointer=None, location=where)

        made = control(**meta)(over_snapshot)
        VIEW_CHECKS[made.id] = (made.meta, check)
        return made

    return wrap


# -- shared helpers ------------------------------------------------------------------------


def _not_evaluated(resource: str, why: str) -> Outcome:
    return Outcome(Status.NOT_EVALUATED, resource, why, {"missing": why})


def _not_applicable(reason: str) -> Outcome:
    return Outcome(Status.PASS, CLUSTER, f"not applicable: {reason}")


def _tenant_namespaces(view: K8sView) -> Iterator[Outcome] | list[K8sObject]:
    """The tenant namespaces, or outcomes saying why there are none to check."""
    why = view.state.why_unreadable("Namespace")
    if why:
        return iter([_not_evaluated(CLUSTER, f"tenant namespaces unknown: {why}")])
    if not view.tenant_namespaces:
        return iter(
            [_not_applicable(f"no tenant namespace (label {TENANT_LABEL} or inventory tenant)")]
        )
    return list(view.tenant_namespaces)


def _per_namespace_pass(view: K8sView, failed: set[str], message: str) -> Iterator[Outcome]:
    """A PASS per tenant namespace without failures (not per pod: 20k pods stay readable).

    When some workload kinds could not be read, a namespace without failures is NOT_EVALUATED.
    """
    why = view.state.why_unreadable(*WORKLOAD_KINDS)
    for ns in view.tenant_namespaces:
        if ns.name in failed:
            continue
        count = len(view.pods_by_namespace.get(ns.name, ()))
        if why:
            yield _not_evaluated(ns.ref, f"workloads could not be read: {why}")
        else:
            yield Outcome(Status.PASS, ns.ref, f"{count} pod spec(s): {message}", {"pods": count})


def _container_name(container: Mapping[str, Any]) -> str:
    return str(container.get("name", "?"))


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


# -- workloads in tenant namespaces -------------------------------------------------------


def _tenant_pod_control(
    view: K8sView, find: Callable[[PodSpec], Iterator[Outcome]], passing: str
) -> Iterator[Outcome]:
    scope = _tenant_namespaces(view)
    if not isinstance(scope, list):
        yield from scope
        return
    failed: set[str] = set()
    for pod in view.tenant_pods:
        for outcome in find(pod):
            failed.add(pod.namespace)
            yield outcome
    yield from _per_namespace_pass(view, failed, passing)


@_k8s_control(
    id="K8S-003",
    title="Privileged container in a tenant namespace sees every GPU on the node",
    plane=Plane.K8S,
    severity=Severity.CRITICAL,
    failure_mode="A privileged container gets every /dev/nvidia* device and the host's kernel "
    "interfaces: it reads other tenants' GPUs and escapes the container boundary.",
    remediation="Remove securityContext.privileged from tenant workloads; enforce the Pod "
    "Security 'baseline' level (or the gpufence admission policy) on tenant namespaces.",
    references=(_PSA, _TOOLKIT),
)
def privileged_in_tenant_namespace(view: K8sView) -> Iterator[Outcome]:
    def find(pod: PodSpec) -> Iterator[Outcome]:
        for ptr, container in pod.containers():
            if dig(container, "securityContext", "privileged") is True:
                gpu = " GPU" if view.uses_gpu(pod) else ""
                yield Outcome(
                    Status.FAIL,
                    pod.owner.ref,
                    f"privileged{gpu} container {_container_name(container)!r} in tenant "
                    f"namespace {pod.namespace}",
                    {
                        "container": _container_name(container),
                        "tenant": view.tenant_of(pod.namespace),
                    },
                    (*ptr, "securityContext", "privileged"),
                )

    yield from _tenant_pod_control(view, find, "no privileged container")


@_k8s_control(
    id="K8S-004",
    title="Tenant pod mounts GPU device nodes or the driver from the host",
    plane=Plane.K8S,
    severity=Severity.CRITICAL,
    failure_mode="A hostPath of /dev/nvidia*, the driver libraries or the device-plugin socket "
    "bypasses the device plugin: the pod reaches GPUs (and MIG instances) it was never given.",
    remediation="Drop hostPath volumes from tenant workloads; GPUs reach pods only through the "
    "device plugin or DRA. Forbid hostPath with Pod Security 'baseline' or the gpufence policy.",
    references=(_PSA, _DEVICE_PLUGIN),
)
def gpu_host_path(view: K8sView) -> Iterator[Outcome]:
    def find(pod: PodSpec) -> Iterator[Outcome]:
        for i, volume in enumerate(pod.spec.get("volumes") or []):
            path = dig(volume, "hostPath", "path")
            if isinstance(path, str) and is_nvidia_host_path(path):
                yield Outcome(
                    Status.FAIL,
                    pod.owner.ref,
                    f"hostPath volume {dig(volume, 'name')!r} mounts {path}",
                    {"volume": dig(volume, "name"), "path": path},
                    (*pod.pointer, "volumes", i, "hostPath", "path"),
                )

    yield from _tenant_pod_control(view, find, "no hostPath to GPU devices or the driver")


@_k8s_control(
    id="K8S-005",
    title="Unprivileged tenant pod selects GPUs through NVIDIA_VISIBLE_DEVICES",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="While the container toolkit accepts NVIDIA_VISIBLE_DEVICES from unprivileged "
    "containers, a pod (or its image) that sets it to 'all' gets every GPU of the node.",
    remediation="Remove NVIDIA_* device variables from tenant pods and set the toolkit's "
    "accept-nvidia-visible-devices-envvar-when-unprivileged = false (volume-mounts or CDI).",
    references=(_TOOLKIT, "https://github.com/NVIDIA/k8s-device-plugin#readme"),
)
def nvidia_env_in_tenant_pod(view: K8sView) -> Iterator[Outcome]:
    accepts, where = view.toolkit_accepts_env()

    def find(pod: PodSpec) -> Iterator[Outcome]:
        for ptr, container in pod.containers():
            if dig(container, "securityContext", "privileged") is True:
                continue  # privileged containers are K8S-003's finding
            for j, env in enumerate(container.get("env") or []):
                name = dig(env, "name")
                if name in NVIDIA_ENV_VARS:
                    yield Outcome(
                        Status.FAIL if accepts else Status.PASS,
                        pod.owner.ref,
                        f"container {_container_name(container)!r} sets {name}="
                        f"{dig(env, 'value')!r}; the toolkit "
                        f"{'accepts' if accepts else 'ignores'} it ({where})",
                        {"variable": name, "toolkit_accepts": accepts, "toolkit_setting": where},
                        (*ptr, "env", j),
                    )

    def only_failures(pod: PodSpec) -> Iterator[Outcome]:
        yield from (o for o in find(pod) if o.status is Status.FAIL)

    yield from _tenant_pod_control(
        view, only_failures, f"no NVIDIA device variable the toolkit would honour ({where})"
    )


# -- tenant namespace posture -------------------------------------------------------------


def _namespace_control(
    view: K8sView, needs: tuple[str, ...], judge: Callable[[K8sObject], Outcome]
) -> Iterator[Outcome]:
    scope = _tenant_namespaces(view)
    if not isinstance(scope, list):
        yield from scope
        return
    why = view.state.why_unreadable(*needs)
    for ns in scope:
        yield _not_evaluated(ns.ref, f"could not read {why}") if why else judge(ns)


def _deny_all(policy: K8sObject, direction: str) -> bool:
    spec = policy.body.get("spec") or {}
    selector = spec.get("podSelector")
    if selector not in (None, {}) and (
        not isinstance(selector, Mapping) or any(selector.get(k) for k in selector)
    ):
        return False
    types = spec.get("policyTypes")
    if types is None:
        types = ["Ingress", *(["Egress"] if "egress" in spec else [])]
    rules = spec.get(direction.lower())
    return direction in types and not rules


@_k8s_control(
    id="K8S-006",
    title="Tenant namespace has no default-deny NetworkPolicy",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="Without a default-deny policy every pod of every tenant can reach the tenant's "
    "pods (inference endpoints, Jupyter, Ray dashboards) and they can reach everything.",
    remediation="Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] and "
    "no rules to each tenant namespace (`gpufence k8s policies` writes them), then allow flows.",
    references=(_NETPOL,),
)
def no_default_deny(view: K8sView) -> Iterator[Outcome]:
    by_ns: dict[str, list[K8sObject]] = {}
    for policy in view.state.of("NetworkPolicy"):
        by_ns.setdefault(policy.namespace or "default", []).append(policy)

    def judge(ns: K8sObject) -> Outcome:
        policies = by_ns.get(ns.name, [])
        missing = [d for d in ("Ingress", "Egress") if not any(_deny_all(p, d) for p in policies)]
        return Outcome(
            Status.FAIL if missing else Status.PASS,
            ns.ref,
            f"no default-deny {' or '.join(missing)} policy"
            if missing
            else "default-deny ingress and egress",
            {"policies": [p.name for p in policies], "missing": missing},
        )

    yield from _namespace_control(view, ("NetworkPolicy",), judge)


@_k8s_control(
    id="K8S-007",
    title="Tenant namespace enforces no Pod Security level",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="Without an enforced Pod Security level a tenant can run privileged pods, "
    "hostPath mounts and host namespaces, i.e. take the GPU node and the other tenants on it.",
    remediation="Label tenant namespaces pod-security.kubernetes.io/enforce=baseline (or "
    "restricted); GPU workloads run fine under both.",
    references=(_PSA,),
)
def no_pod_security_level(view: K8sView) -> Iterator[Outcome]:
    def judge(ns: K8sObject) -> Outcome:
        level = ns.labels.get(PSA_ENFORCE_LABEL)
        ok = level in ("baseline", "restricted")
        return Outcome(
            Status.PASS if ok else Status.FAIL,
            ns.ref,
            f"{PSA_ENFORCE_LABEL}={level}" if level else f"no {PSA_ENFORCE_LABEL} label",
            {"enforce": level},
            ("metadata", "labels"),
        )

    yield from _namespace_control(view, (), judge)


def _quota_keys(view: K8sView, namespace: str) -> set[str]:
    keys: set[str] = set()
    for quota in view.state.of("ResourceQuota"):
        if (quota.namespace or "default") != namespace:
            continue
        hard = dig(quota.body, "spec", "hard")
        if isinstance(hard, Mapping):
            keys.update(str(k).removeprefix("requests.").removeprefix("limits.") for k in hard)
    return keys


@_k8s_control(
    id="K8S-008",
    title="Tenant namespace has no ResourceQuota on GPU resources",
    plane=Plane.K8S,
    severity=Severity.MEDIUM,
    failure_mode="Without a GPU quota one tenant can claim every GPU, MIG instance or shared "
    "replica of the cluster and starve the others (and time-sliced .shared names escape a "
    "quota on nvidia.com/gpu).",
    remediation="Add a ResourceQuota with requests.nvidia.com/gpu (and every MIG or .shared "
    "resource the tenant uses) to each tenant namespace.",
    references=(_QUOTA, _DEVICE_PLUGIN),
)
def no_gpu_quota(view: K8sView) -> Iterator[Outcome]:
    def judge(ns: K8sObject) -> Outcome:
        keys = _quota_keys(view, ns.name)
        gpu_keys = {k for k in keys if k.startswith("nvidia.com/")}
        used = set().union(*(p.gpu_resources for p in view.pods_by_namespace.get(ns.name, ())))
        missing = sorted(used - gpu_keys)
        if not gpu_keys:
            message = "no ResourceQuota limits nvidia.com/* resources"
        elif missing:
            message = f"quota does not cover {joined(missing)}"
        else:
            message = f"GPU quota on {joined(sorted(gpu_keys))}"
        return Outcome(
            Status.FAIL if not gpu_keys or missing else Status.PASS,
            ns.ref,
            message,
            {"quota": sorted(gpu_keys), "requested": sorted(used)},
        )

    yield from _namespace_control(view, ("ResourceQuota", *WORKLOAD_KINDS), judge)


_SIGNATURE_KINDS = (
    "ClusterImagePolicy.policy.sigstore.dev",
    "ClusterPolicy.kyverno.io",
    "Policy.kyverno.io",
    "ImageValidatingPolicy.policies.kyverno.io",
)


def _kyverno_enforces_on(policy: K8sObject, namespace: str) -> bool:
    spec = policy.body.get("spec") or {}
    if policy.kind == "Policy" and policy.namespace != namespace:
        return False
    default_action = str(spec.get("validationFailureAction", "Audit")).lower()
    for rule in spec.get("rules") or []:
        checks = dig(rule, "verifyImages")
        if not checks:
            continue
        actions = {str(dig(c, "failureAction") or default_action).lower() for c in checks}
        if actions != {"enforce"}:
            continue
        excluded = [
            n
            for block in ("any", "all")
            for item in dig(rule, "exclude", block) or []
            for n in dig(item, "resources", "namespaces") or []
        ]
        included = [
            n
            for block in ("any", "all")
            for item in dig(rule, "match", block) or []
            for n in dig(item, "resources", "namespaces") or []
        ]
        if namespace in excluded or (included and namespace not in included):
            continue
        return True
    return False


@_k8s_control(
    id="K8S-009",
    title="No image-signature admission covers a tenant namespace",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="Unsigned or tampered images (a poisoned CUDA base image, a swapped model "
    "server) run next to other tenants' GPUs and weights without anything checking provenance.",
    remediation="Enforce signatures: Sigstore policy-controller with a ClusterImagePolicy (mode "
    "enforce) and label the namespace policy.sigstore.dev/include=true, or Kyverno verifyImages "
    "with failureAction Enforce.",
    references=(_SIGSTORE, _KYVERNO),
)
def no_image_signature_admission(view: K8sView) -> Iterator[Outcome]:
    sigstore = [
        p
        for p in view.state.of("ClusterImagePolicy.policy.sigstore.dev")
        if str(dig(p.body, "spec", "mode") or "enforce").lower() != "warn"
    ]
    kyverno = list(view.state.of("ClusterPolicy.kyverno.io", "Policy.kyverno.io"))
    validating = [
        p
        for p in view.state.of("ImageValidatingPolicy.policies.kyverno.io")
        if "Deny" in (dig(p.body, "spec", "validationActions") or ["Deny"])
    ]
    unread = view.state.why_unreadable(*_SIGNATURE_KINDS)

    def judge(ns: K8sObject) -> Outcome:
        how = []
        if sigstore and ns.labels.get(SIGSTORE_INCLUDE_LABEL) == "true":
            how.append(f"Sigstore {joined(p.name for p in sigstore)}")
        how += [f"Kyverno {p.name}" for p in kyverno if _kyverno_enforces_on(p, ns.name)]
        how += [f"Kyverno ImageValidatingPolicy {p.name}" for p in validating]
        if how:
            return Outcome(Status.PASS, ns.ref, f"enforced by {joined(how)}", {"by": how})
        if unread:
            return _not_evaluated(ns.ref, f"admission policies could not be read: {unread}")
        reason = (
            f"a ClusterImagePolicy exists but the namespace lacks {SIGSTORE_INCLUDE_LABEL}=true"
            if sigstore
            else "no enforcing ClusterImagePolicy, Kyverno verifyImages or ImageValidatingPolicy"
        )
        return Outcome(Status.FAIL, ns.ref, reason, {"by": []}, ("metadata", "labels"))

    yield from _namespace_control(view, (), judge)


@_k8s_control(
    id="K8S-010",
    title="DRA admin access to devices from a tenant namespace",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="An adminAccess ResourceClaim reaches devices already allocated to other pods "
    "(monitoring-level access to every tenant's GPUs); only admin namespaces may carry it.",
    remediation="Remove the resource.kubernetes.io/admin-access label from tenant namespaces and "
    "adminAccess: true from their ResourceClaims; keep admin access to operator namespaces.",
    references=(_DRA, "https://kubernetes.io/docs/concepts/security/hardening-guide/"),
)
def dra_admin_access(view: K8sView) -> Iterator[Outcome]:
    claims: dict[str, list[tuple[K8sObject, tuple[str | int, ...]]]] = {}
    for obj in view.state.of("ResourceClaim", "ResourceClaimTemplate"):
        base: tuple[str | int, ...] = (
            ("spec", "spec") if obj.kind == "ResourceClaimTemplate" else ("spec",)
        )
        for i, req in enumerate(dig(obj.body, *base, "devices", "requests") or []):
            for sub in ((), ("exactly",)):
                if dig(req, *sub, "adminAccess") is True:
                    ptr = (*base, "devices", "requests", i, *sub, "adminAccess")
                    claims.setdefault(obj.namespace or "default", []).append((obj, ptr))

    def judge(ns: K8sObject) -> Outcome:
        labelled = "true" in (ns.labels.get(DRA_ADMIN_LABEL), ns.labels.get(DRA_ADMIN_LABEL_OLD))
        found = claims.get(ns.name, [])
        problems = ([f"namespace labelled {DRA_ADMIN_LABEL}=true"] if labelled else []) + [
            f"{obj.kind} {obj.name} requests adminAccess" for obj, _ in found
        ]
        return Outcome(
            Status.FAIL if problems else Status.PASS,
            ns.ref,
            "; ".join(problems) or "no DRA admin access",
            {"claims": [obj.name for obj, _ in found], "admin_label": labelled},
        )

    yield from _namespace_control(view, ("ResourceClaim", "ResourceClaimTemplate"), judge)


def _networks(pod: PodSpec) -> list[tuple[str, str]]:
    """(namespace, name) of the secondary networks a pod attaches (Multus annotation)."""
    text = pod.annotations.get(NETWORKS_ANNOTATION, "").strip()
    if not text:
        return []
    out: list[tuple[str, str]] = []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            return []
        return [
            (str(item.get("namespace") or pod.namespace), str(item["name"]))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, Mapping) and item.get("name")
        ]
    for part in text.split(","):
        ref = part.strip().split("@", 1)[0]
        if ref:
            ns, _, name = ref.rpartition("/")
            out.append((ns or pod.namespace, name))
    return out


def _segment(nad: K8sObject) -> str:
    """What makes two NetworkAttachmentDefinitions one L2/RDMA segment."""
    try:
        config = json.loads(str(dig(nad.body, "spec", "config") or "{}"))
    except json.JSONDecodeError:
        config = {}
    if not isinstance(config, Mapping):
        config = {}
    resource = nad.annotations.get("k8s.v1.cni.cncf.io/resourceName", "")
    parts = [str(config.get(k)) for k in ("type", "master", "vlan", "pkey") if config.get(k)]
    if resource and any(config.get(k) is not None for k in ("vlan", "pkey")):
        return f"{resource}:{':'.join(parts)}"
    return f"{nad.namespace or 'default'}/{nad.name}"


@_k8s_control(
    id="K8S-011",
    title="Secondary (RDMA/SR-IOV) network attached by more than one tenant",
    plane=Plane.K8S,
    severity=Severity.HIGH,
    failure_mode="A Multus/SR-IOV network shared by tenants is one L2/RDMA segment: NetworkPolicy "
    "does not apply to it, so tenants reach each other's pods and RDMA queue pairs directly.",
    remediation="Give each tenant its own NetworkAttachmentDefinition in its namespace with its "
    "own VLAN or InfiniBand PKey, and never reference another namespace's network.",
    references=(_MULTUS, "https://github.com/k8snetworkplumbingwg/sriov-network-device-plugin"),
)
def shared_secondary_network(view: K8sView) -> Iterator[Outcome]:
    why = view.state.why_unreadable(
        "Namespace", "NetworkAttachmentDefinition.k8s.cni.cncf.io", *WORKLOAD_KINDS
    )
    if why:
        yield _not_evaluated(CLUSTER, f"cannot tell who attaches which network: {why}")
        return
    nads = {
        (n.namespace or "default", n.name): n
        for n in view.state.of("NetworkAttachmentDefinition.k8s.cni.cncf.io")
    }
    users: dict[str, set[str]] = {}
    owners: dict[str, K8sObject | None] = {}
    for pod in view.tenant_pods:
        tenant = view.tenant_of(pod.namespace)
        for ns, name in _networks(pod):
            nad = nads.get((ns, name))
            segment = _segment(nad) if nad else f"{ns}/{name}"
            users.setdefault(segment, set()).add(str(tenant))
            owners.setdefault(segment, nad)
            owner_tenant = view.tenant_of(ns)
            if owner_tenant and owner_tenant != tenant:
                users[segment].add(owner_tenant)
    if not users:
        yield _not_applicable("no tenant pod attaches a secondary network")
        return
    for segment, tenants in sorted(users.items()):
        nad = owners[segment]
        yield Outcome(
            Status.FAIL if len(tenants) > 1 else Status.PASS,
            nad.ref if nad else f"k8s/network/{segment}",
            f"network {segment} attached by tenant(s) {joined(sorted(tenants))}",
            {"tenants": sorted(tenants), "segment": segment},
        )


def _location(state: ClusterState, outcome: Outcome) -> FindingLocation | None:
    obj = state.by_ref.get(outcome.resource)
    if obj is None or state.live:
        return None
    line, column = obj.locate(outcome.pointer or ())
    return FindingLocation(file=obj.source, line=line, column=column)


def scan_cluster(
    state: ClusterState,
    inventory_tenants: Mapping[str, str] | None = None,
    checks: Mapping[str, tuple[ControlMeta, ViewCheck]] = VIEW_CHECKS,
) -> AuditResult:
    """`gpufence k8s scan` as a library call: the K8S controls over one cluster state (pure).

    Runs through the engine's one run loop; findings point into the manifests they came from.
    """
    view = K8sView(state, inventory_tenants)
    ordered = [checks[key] for key in sorted(checks)]
    findings = evaluate(ordered, view, lambda o: _location(state, o), scope=CLUSTER)
    return AuditResult(
        findings=findings,
        controls=tuple(meta.info() for meta, _ in ordered),
        inputs=state.sources or ("live cluster",),
        tool_version=__version__,
    )
