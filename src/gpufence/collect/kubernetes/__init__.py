"""Kubernetes collectors: manifests (files, Helm output) or a live cluster -> ClusterState."""

from __future__ import annotations

from gpufence.collect.kubernetes.manifests import load_manifests
from gpufence.kubernetes.objects import ClusterState, K8sObject, state_from_raw, state_to_raw

__all__ = ["ClusterState", "K8sObject", "load_manifests", "state_from_raw", "state_to_raw"]
