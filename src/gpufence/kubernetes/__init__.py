"""Kubernetes domain types: objects read from manifests or a live cluster, derived views,
admission policies."""
