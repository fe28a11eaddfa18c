"""Run the K8S controls over a cluster state: `gpufence k8s scan` as a library call."""

from __future__ import annotations

from collections.abc import Mapping

from gpufence import __version__
from gpufence.controls.engine import ControlMeta, Outcome, finding_from
from gpufence.controls.k8s import VIEW_CHECKS, ViewCheck
from gpufence.kubernetes.objects import ClusterState
from gpufence.kubernetes.view import K8sView
from gpufence.model.findings import (
    INTERNAL_ERROR_KEY,
    AuditResult,
    Finding,
    FindingLocation,
    Status,
)

__all__ = ["scan_state"]


def _location(state: ClusterState, outcome: Outcome) -> FindingLocation | None:
    obj = state.by_ref.get(outcome.resource)
    if obj is None or state.live:
        return None
    line, column = obj.locate(outcome.pointer or ())
    return FindingLocation(file=obj.source, line=line, column=column)


def scan_state(
    state: ClusterState,
    inventory_tenants: Mapping[str, str] | None = None,
    checks: Mapping[str, tuple[ControlMeta, ViewCheck]] = VIEW_CHECKS,
) -> AuditResult:
    """Evaluate the K8S controls over ``state``; a check that raises is one ERROR finding."""
    view = K8sView(state, inventory_tenants)
    findings: list[Finding] = []
    for _, (meta, check) in sorted(checks.items()):
        try:
            outcomes = list(check(view))
        except Exception as exc:  # noqa: BLE001 - a buggy control becomes one ERROR finding
            outcomes = [
                Outcome(
                    Status.ERROR,
                    "k8s/cluster",
                    f"control failed: {exc!r}",
                    {INTERNAL_ERROR_KEY: type(exc).__name__},
                )
            ]
        if not outcomes:
            outcomes = [Outcome(Status.NOT_EVALUATED, "k8s/cluster", "no result")]
        findings.extend(finding_from(meta, o, _location(state, o)) for o in outcomes)
    return AuditResult(
        findings=tuple(findings),
        controls=tuple(meta.info() for _, (meta, _) in sorted(checks.items())),
        inputs=state.sources or ("live cluster",),
        tool_version=__version__,
    )
