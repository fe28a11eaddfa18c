"""Tenant namespace posture (K8S-006 .. K8S-009): default deny, Pod Security, GPU quota, image
signatures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gpufence.controls._common import joined
from gpufence.controls.engine import Outcome
from gpufence.controls.k8s._base import (
    _DEVICE_PLUGIN,
    _KYVERNO,
    _NETPOL,
    _PSA,
    _QUOTA,
    _SIGSTORE,
    WORKLOAD_KINDS,
    _k8s_control,
    _namespace_control,
    _not_evaluated,
)
from gpufence.kubernetes.objects import K8sObject
from gpufence.kubernetes.view import (
    PSA_ENFORCE_LABEL,
    SIGSTORE_INCLUDE_LABEL,
    K8sView,
    dig,
)
from gpufence.model.findings import Plane, Severity, Status

# -- tenant namespace posture -------------------------------------------------------------


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
