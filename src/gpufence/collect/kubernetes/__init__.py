"""Kubernetes collectors: manifests (files, Helm output) or a live cluster -> ClusterState."""

from __future__ import annotations

from gpufence.collect import CollectorInfo
from gpufence.collect.kubernetes.manifests import load_manifests
from gpufence.kubernetes.objects import ClusterState, K8sObject, state_from_raw, state_to_raw
from gpufence.model.evidence import CollectorName, EvidenceDocument

__all__ = [
    "ClusterState",
    "K8sObject",
    "cluster_evidence",
    "load_manifests",
    "state_from_raw",
    "state_to_raw",
]

COLLECTOR = CollectorInfo(
    name=CollectorName.KUBERNETES,
    module=__name__,
    subjects="cluster/kubernetes",
    command="k8s scan",
)
"""This module's collector (found by :func:`gpufence.collect.collectors`)."""


def cluster_evidence(state: ClusterState) -> EvidenceDocument:
    """What a Kubernetes read saw, as one evidence document (subject ``cluster/kubernetes``)."""
    return EvidenceDocument.new(
        subject="cluster/kubernetes", collector=CollectorName.KUBERNETES, raw=state_to_raw(state)
    )
