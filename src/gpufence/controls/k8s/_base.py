"""What every Kubernetes control shares: the registration that makes a view check both a `k8s scan`
check and an audit control, the views built from evidence, and the tenant-namespace helpers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from gpufence.controls.engine import Control, ControlMeta, Outcome, control
from gpufence.kubernetes.objects import K8sObject, state_from_raw
from gpufence.kubernetes.view import (
    TENANT_LABEL,
    K8sView,
)
from gpufence.model.evidence import CollectorName
from gpufence.model.findings import FindingLocation, Status
from gpufence.model.snapshot import Snapshot

__all__ = ["CLUSTER", "VIEW_CHECKS", "WORKLOAD_KINDS", "ViewCheck", "views_from_snapshot"]

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
