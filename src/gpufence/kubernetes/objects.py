"""Kubernetes objects as read from manifests or a live cluster, and what could not be read.

A :class:`ClusterState` is the input of the K8S controls. ``unreadable`` names every kind the
collector was refused (403), could not list, or did not find: the controls report
NOT_EVALUATED for anything that depends on it, never PASS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import JsonValue

__all__ = [
    "DEVICE_PLUGIN_CONFIG",
    "ClusterState",
    "K8sObject",
    "Pointer",
    "kind_key",
    "state_from_raw",
    "state_to_raw",
]

Pointer = tuple[str | int, ...]

DEVICE_PLUGIN_CONFIG = "DevicePluginConfig"
"""Kind of device-plugin configs embedded in ConfigMaps (kept as ``<kind>.gpufence.io``)."""

# Kinds without a namespace; any other kind written without one lives in "default".
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "ClusterPolicy",
        "ClusterImagePolicy",
        "ImageValidatingPolicy",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "DeviceClass",
        "RuntimeClass",
        "DevicePluginConfig",
    }
)


def kind_key(kind: str, api_version: str) -> str:
    """'Pod', 'Deployment', 'ClusterPolicy.nvidia.com': the kind, qualified by a non-core group.

    Built-in groups (core, apps, batch, networking.k8s.io, resource.k8s.io, ...) are not
    written, so 'Pod' and 'Deployment' read naturally; CRD groups are (two ClusterPolicy kinds).
    """
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    if not group or group.endswith(".k8s.io") or "." not in group:
        return kind
    return f"{kind}.{group}"


@dataclass(frozen=True)
class K8sObject:
    """One Kubernetes object and where it came from."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: Mapping[str, Any]
    source: str
    """The manifest file, or 'live:<server>'."""
    line: int | None = None
    column: int | None = None
    locator: Callable[[Pointer], tuple[int, int] | None] | None = field(
        default=None, compare=False, repr=False
    )
    """Line/column of a value inside the object (manifests only; computed on demand, so a scan
    of thousands of objects does not keep a position table per value)."""

    @property
    def key(self) -> str:
        """The kind key (``Kind`` or ``Kind.group``), as :meth:`ClusterState.of` takes it."""
        return kind_key(self.kind, self.api_version)

    @property
    def ref(self) -> str:
        """Stable resource path for findings: k8s/ns/<ns>/<Kind>/<name> or k8s/cluster/..."""
        if self.kind in CLUSTER_SCOPED and not self.namespace:
            scope = "cluster"
        else:
            scope = f"ns/{self.namespace or 'default'}"
        return f"k8s/{scope}/{self.kind}/{self.name}"

    @cached_property
    def labels(self) -> Mapping[str, str]:
        """``metadata.labels`` as strings (empty when absent or malformed)."""
        meta = self.body.get("metadata") or {}
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}

    @cached_property
    def annotations(self) -> Mapping[str, str]:
        """``metadata.annotations`` as strings (empty when absent or malformed)."""
        meta = self.body.get("metadata") or {}
        notes = meta.get("annotations") if isinstance(meta, Mapping) else None
        return {str(k): str(v) for k, v in notes.items()} if isinstance(notes, Mapping) else {}

    def locate(self, pointer: Pointer = ()) -> tuple[int | None, int | None]:
        """Line/column of ``pointer`` in the object (nearest known ancestor), else its start."""
        if pointer and self.locator is not None:
            found = self.locator(tuple(pointer))
            if found is not None:
                return found
        return self.line, self.column

    def to_json(self) -> dict[str, JsonValue]:
        """The object as JSON-ready data (for evidence files)."""
        return {
            "source": self.source,
            "line": self.line,
            "object": {"apiVersion": self.api_version, "kind": self.kind, **self.body},
        }


@dataclass(frozen=True)
class ClusterState:
    """Everything one scan read, plus what it could not read and why."""

    objects: tuple[K8sObject, ...]
    unreadable: Mapping[str, str] = field(default_factory=dict)
    """Kind key -> why it could not be read (e.g. '403 Forbidden ...')."""
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Documents that were skipped (not Kubernetes objects), CRDs not installed, ..."""
    live: bool = False

    @cached_property
    def _by_kind(self) -> Mapping[str, tuple[K8sObject, ...]]:
        index: dict[str, list[K8sObject]] = {}
        for obj in self.objects:
            index.setdefault(obj.key, []).append(obj)
        return {k: tuple(v) for k, v in index.items()}

    @cached_property
    def by_ref(self) -> Mapping[str, K8sObject]:
        """Every object by its reference (``kind/namespace/name``)."""
        return {obj.ref: obj for obj in self.objects}

    def of(self, *keys: str) -> Iterator[K8sObject]:
        """Objects of the given kind keys, in the order read."""
        for key in keys:
            yield from self._by_kind.get(key, ())

    def why_unreadable(self, *keys: str) -> str | None:
        """The reasons any of ``keys`` could not be read, joined; None when all were read."""
        reasons = [f"{k}: {self.unreadable[k]}" for k in keys if k in self.unreadable]
        return "; ".join(reasons) or None


def state_to_raw(state: ClusterState) -> dict[str, JsonValue]:
    """The evidence ``raw`` form of ``state`` (what `gpufence k8s scan --evidence-out` writes)."""
    return {
        "live": state.live,
        "sources": list(state.sources),
        "unreadable": dict(state.unreadable),
        "notes": list(state.notes),
        "objects": [obj.to_json() for obj in state.objects],
    }


def state_from_raw(raw: Mapping[str, Any]) -> ClusterState:
    """Inverse of :func:`state_to_raw` (object positions inside files are not kept)."""
    objects = []
    for item in raw.get("objects") or []:
        body = item.get("object") if isinstance(item, Mapping) else None
        if not isinstance(body, Mapping) or "kind" not in body:
            continue
        meta = body.get("metadata")
        if not isinstance(meta, Mapping):
            meta = {}
        objects.append(
            K8sObject(
                api_version=str(body.get("apiVersion", "v1")),
                kind=str(body["kind"]),
                name=str(meta.get("name", "<unnamed>")),
                namespace=str(meta["namespace"]) if meta.get("namespace") else None,
                body=body,
                source=str(item.get("source", "evidence")),
                line=item.get("line") if isinstance(item.get("line"), int) else None,
            )
        )
    unreadable = raw.get("unreadable")
    return ClusterState(
        objects=tuple(objects),
        unreadable={str(k): str(v) for k, v in unreadable.items()}
        if isinstance(unreadable, Mapping)
        else {},
        sources=tuple(str(s) for s in raw.get("sources") or []),
        notes=tuple(str(n) for n in raw.get("notes") or []),
        live=bool(raw.get("live")),
    )
