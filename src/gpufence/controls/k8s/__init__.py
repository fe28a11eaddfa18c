"""Kubernetes GPU-tenancy controls (K8S-*), over manifests or a live cluster.

Each check is a pure function of a :class:`~gpufence.kubernetes.view.K8sView`, in one module per
concern (sharing, workloads, namespaces, devices_networks, confidential).
`gpufence k8s scan` runs them on what it read (:data:`VIEW_CHECKS`); as registered controls
they run inside `gpufence audit` on Kubernetes evidence (``gpufence k8s scan --evidence-out``),
and say NOT_EVALUATED when there is none. Anything a scan could not read (403, not listed) makes
the controls that need it NOT_EVALUATED, never PASS.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpufence import __version__
from gpufence.controls.engine import ControlMeta, Outcome, evaluate
from gpufence.controls.k8s import confidential, devices_networks, namespaces, sharing, workloads
from gpufence.controls.k8s._base import CLUSTER, VIEW_CHECKS, ViewCheck, views_from_snapshot
from gpufence.kubernetes.objects import ClusterState
from gpufence.kubernetes.view import K8sView
from gpufence.model.findings import AuditResult, FindingLocation

__all__ = [
    "VIEW_CHECKS",
    "ViewCheck",
    "confidential",
    "devices_networks",
    "namespaces",
    "scan_cluster",
    "sharing",
    "views_from_snapshot",
    "workloads",
]


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
