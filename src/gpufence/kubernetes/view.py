"""Pure, derived views over a :class:`ClusterState`: tenants, pod specs, scheduling, GPU sharing.

Tenancy: a namespace belongs to tenant T when it carries the label ``gpufence.io/tenant: T``, or
(given an inventory) when it is named like an inventory tenant. A tenant's data sensitivity comes
from the inventory, else from the namespace label ``gpufence.io/data-sensitivity``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml

from gpufence._yaml import KubernetesYamlLoader
from gpufence.kubernetes.objects import DEVICE_PLUGIN_CONFIG, ClusterState, K8sObject, Pointer

__all__ = [
    "CC_MODE_LABEL",
    "COCO_RUNTIME_CLASSES",
    "HAMI_NODE_ANNOTATION",
    "NVIDIA_ENV_VARS",
    "NVIDIA_HOST_PATH_PATTERN",
    "SENSITIVITY_LABEL",
    "TENANT_LABEL",
    "DevicePluginConfig",
    "DraSharing",
    "K8sView",
    "NodeSharing",
    "PodSpec",
]

TENANT_LABEL = "gpufence.io/tenant"
SENSITIVITY_LABEL = "gpufence.io/data-sensitivity"
PSA_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
DRA_ADMIN_LABEL = "resource.kubernetes.io/admin-access"
DRA_ADMIN_LABEL_OLD = "resource.k8s.io/admin-access"
SIGSTORE_INCLUDE_LABEL = "policy.sigstore.dev/include"
CC_MODE_LABEL = "nvidia.com/cc.mode"
CC_MODE_STATE_LABEL = "nvidia.com/cc.mode.state"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"
CONFIDENTIAL = ("confidential", "regulated")

# NVIDIA Confidential Containers: the TEE-aware Kata runtime classes (kata-deploy) and the
# passthrough GPU resource the Kata sandbox device plugin advertises.
COCO_RUNTIME_CLASSES = ("kata-qemu-nvidia-gpu-snp", "kata-qemu-nvidia-gpu-tdx")
PGPU_RESOURCE = "nvidia.com/pgpu"

# NVIDIA DRA driver (k8s-dra-driver-gpu): GpuConfig opaque parameters with a sharing strategy.
DRA_DRIVER = "gpu.nvidia.com"
DRA_SHARING_STRATEGIES = ("TimeSlicing", "MPS")

# HAMi (Project-HAMi/HAMi): software-enforced GPU sharing. Its device plugin registers a node's
# GPUs in this annotation; pods ask for memory/core shares of one physical GPU.
HAMI_NODE_ANNOTATION = "hami.io/node-nvidia-register"
HAMI_RESOURCES = ("nvidia.com/gpumem", "nvidia.com/gpumem-percentage", "nvidia.com/gpucores")
HAMI_POD_ANNOTATIONS = (
    "hami.io/gpu-scheduler-policy",
    "hami.io/node-scheduler-policy",
    "hami.io/vgpu-devices-allocated",
    "nvidia.com/use-gputype",
    "nvidia.com/nouse-gputype",
    "nvidia.com/use-gpuuuid",
    "nvidia.com/nouse-gpuuuid",
    "nvidia.com/vgpu-mode",
)
HAMI_SCHEDULER = "hami-scheduler"

# Environment variables the NVIDIA container toolkit reads to pick devices and driver features.
NVIDIA_ENV_VARS = (
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_MIG_CONFIG_DEVICES",
    "NVIDIA_MIG_MONITOR_DEVICES",
)

# Host paths that expose GPU device nodes, the driver or the device-plugin socket (RE2 syntax, so
# the admission policy's CEL `matches()` uses the very same pattern).
NVIDIA_HOST_PATH_PATTERN = (
    r"^(/|/dev|/dev/nvidia.*|/dev/dri.*|/run/nvidia.*|/var/run/nvidia.*|/usr/local/nvidia.*"
    r"|/var/lib/kubelet/device-plugins.*|/var/lib/kubelet/pod-resources.*|/etc/nvidia.*"
    r"|/usr/bin/nvidia.*|/usr/lib(64|32)?(/x86_64-linux-gnu|/aarch64-linux-gnu)?"
    r"(/libnvidia.*|/libcuda.*|/nvidia.*)?|/proc|/sys)/?$"
)
_HOST_PATH = re.compile(NVIDIA_HOST_PATH_PATTERN)

_TEMPLATE_PATHS: Mapping[str, Pointer] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_GPU_DEVICE_CLASS = re.compile(r"(^|\.)(gpu|mig)\.nvidia\.com$")


def dig(data: Any, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...`` or None when any step is missing or of the wrong type."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, Mapping):
            return None
        data = data[part] if isinstance(part, int) else data.get(part)
    return data


def is_nvidia_host_path(path: str) -> bool:
    return bool(_HOST_PATH.match(path))


@dataclass(frozen=True)
class PodSpec:
    """The pod spec of a Pod or of a workload's pod template."""

    owner: K8sObject
    pointer: Pointer
    spec: Mapping[str, Any]

    @property
    def namespace(self) -> str:
        """The namespace of the workload (``default`` when unset)."""
        return self.owner.namespace or "default"

    @property
    def annotations(self) -> Mapping[str, str]:
        """The pod template's annotations (the pod's own for a bare Pod)."""
        if self.owner.kind == "Pod":
            return self.owner.annotations
        notes = dig(self.owner.body, *self.pointer[:-1], "metadata", "annotations")
        return {str(k): str(v) for k, v in notes.items()} if isinstance(notes, Mapping) else {}

    def required_node_terms(self) -> Any:
        """The ``nodeSelectorTerms`` of the required node affinity, as written (None if unset)."""
        return dig(
            self.spec,
            "affinity",
            "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
        )

    def containers(self) -> Iterator[tuple[Pointer, Mapping[str, Any]]]:
        """Every container, init and ephemeral container, with its pointer into the manifest."""
        for field in _CONTAINER_LISTS:
            items = self.spec.get(field)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    if isinstance(item, Mapping):
                        yield (*self.pointer, field, i), item

    @cached_property
    def gpu_resources(self) -> frozenset[str]:
        """nvidia.com/* extended resources the containers request or limit."""
        names: set[str] = set()
        for _, container in self.containers():
            for section in ("limits", "requests"):
                values = dig(container, "resources", section)
                if isinstance(values, Mapping):
                    names.update(str(k) for k in values if str(k).startswith("nvidia.com/"))
        return frozenset(names)

    def uses_gpu(self, claims_with_gpu: frozenset[tuple[str, str]] = frozenset()) -> bool:
        """Whether the pod requests an NVIDIA GPU: a GPU resource or a claim on a GPU class."""
        if self.gpu_resources:
            return True
        refs = self.spec.get("resourceClaims")
        if isinstance(refs, list):
            for ref in refs:
                name = dig(ref, "resourceClaimName") or dig(ref, "resourceClaimTemplateName")
                if name and (self.namespace, str(name)) in claims_with_gpu:
                    return True
        return False

    def resource_values(self, name: str) -> list[str]:
        """Every limit/request value of resource ``name`` in the pod's containers."""
        values: list[str] = []
        for _, container in self.containers():
            for section in ("limits", "requests"):
                found = dig(container, "resources", section, name)
                if found is not None:
                    values.append(str(found))
        return values

    @property
    def runtime_class(self) -> str | None:
        """The pod's ``runtimeClassName``, None when unset."""
        name = self.spec.get("runtimeClassName")
        return str(name) if name else None

    @property
    def hami(self) -> bool:
        """The pod asks HAMi for a share of a GPU (resources, annotations or its scheduler)."""
        return (
            any(r in self.gpu_resources for r in HAMI_RESOURCES)
            or any(a in self.annotations for a in HAMI_POD_ANNOTATIONS)
            or self.spec.get("schedulerName") == HAMI_SCHEDULER
        )

    @property
    def hami_exclusive(self) -> bool:
        """HAMi gives the pod whole GPUs: 100 % of the cores and of the memory (HAMi example
        use_exclusive_card.yaml); anything less leaves room for another pod on the GPU."""
        cores = self.resource_values("nvidia.com/gpucores")
        memory = self.resource_values("nvidia.com/gpumem-percentage")
        return bool(cores and memory) and all(v == "100" for v in (*cores, *memory))

    def claim_refs(self) -> list[tuple[str, str]]:
        """(kind, name) of the ResourceClaims / ResourceClaimTemplates the pod references."""
        out: list[tuple[str, str]] = []
        for ref in self.spec.get("resourceClaims") or []:
            if dig(ref, "resourceClaimName"):
                out.append(("ResourceClaim", str(dig(ref, "resourceClaimName"))))
            elif dig(ref, "resourceClaimTemplateName"):
                out.append(("ResourceClaimTemplate", str(dig(ref, "resourceClaimTemplateName"))))
        return out

    def node_selector(self) -> Mapping[str, str]:
        """The pod's ``nodeSelector``."""
        selector = self.spec.get("nodeSelector")
        return (
            {str(k): str(v) for k, v in selector.items()} if isinstance(selector, Mapping) else {}
        )


def _matches_expression(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key, op = str(expr.get("key")), str(expr.get("operator"))
    values = [str(v) for v in expr.get("values") or []]
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _tolerates(tolerations: list[Any], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        if not isinstance(tol, Mapping):
            continue
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (
            not tol.get("key") or tol["key"] == taint.get("key")
        ):
            return True
        if tol.get("key") == taint.get("key") and str(tol.get("value", "")) == str(
            taint.get("value", "")
        ):
            return True
    return False


def _scheduling_key(pod: PodSpec) -> str:
    spec = pod.spec
    return json.dumps(
        [
            spec.get("nodeName"),
            spec.get("nodeSelector"),
            dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"),
            spec.get("tolerations"),
        ],
        sort_keys=True,
        default=str,
    )


def can_schedule(pod: PodSpec, node: K8sObject) -> bool:
    """Would the scheduler consider ``node`` for ``pod`` (nodeName, selector, affinity, taints)?"""
    name = pod.spec.get("nodeName")
    if name:
        return str(name) == node.name
    labels = node.labels
    if any(labels.get(k) != v for k, v in pod.node_selector().items()):
        return False
    terms = pod.required_node_terms()
    if isinstance(terms, list) and terms:
        if not any(
            all(_matches_expression(labels, e) for e in (dig(t, "matchExpressions") or []))
            for t in terms
            if isinstance(t, Mapping)
        ):
            return False
    taints = dig(node.body, "spec", "taints") or []
    tolerations = pod.spec.get("tolerations") or []
    return all(
        _tolerates(tolerations, t)
        for t in taints
        if isinstance(t, Mapping) and t.get("effect") in ("NoSchedule", "NoExecute")
    )


@dataclass(frozen=True)
class DevicePluginConfig:
    """One k8s-device-plugin config (a ConfigMap entry, or a bare config file)."""

    owner: K8sObject
    key: str
    pointer: Pointer
    config: Mapping[str, Any]

    @property
    def label(self) -> str:
        """How the config is named in messages (a ConfigMap key or the config file)."""
        return f"config {self.key!r}" if self.owner.kind == "ConfigMap" else "config file"

    def _sharing(self, kind: str) -> Mapping[str, Any]:
        value = dig(self.config, "sharing", kind)
        return value if isinstance(value, Mapping) else {}

    def replicas(self, kind: str) -> dict[str, int]:
        """Replicas per resource name under ``sharing.<kind>`` (timeSlicing or mps)."""
        out: dict[str, int] = {}
        for item in self._sharing(kind).get("resources") or []:
            try:
                out[str(dig(item, "name"))] = int(dig(item, "replicas") or 0)
            except (TypeError, ValueError):
                continue
        return out

    @property
    def strategy(self) -> str:
        """'mps', 'time-slicing' or 'none' (k8s-device-plugin api/config/v1/sharing.go)."""
        if any(n > 1 for n in self.replicas("mps").values()):
            return "mps"
        if any(n > 1 for n in self.replicas("timeSlicing").values()):
            return "time-slicing"
        return "none"

    def flag(self, kind: str, name: str) -> bool | None:
        """A boolean setting under ``sharing.<kind>``, None when absent or not a boolean."""
        value = self._sharing(kind).get(name)
        return value if isinstance(value, bool) else None


def _parse_config(text: str) -> Mapping[str, Any] | None:
    try:
        data = yaml.load(text, Loader=KubernetesYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError):  # ValueError: a scalar its tag cannot build (0b_)
        return None
    if isinstance(data, Mapping) and str(data.get("version")) == "v1" and "sharing" in data:
        return data
    return None


@dataclass(frozen=True)
class DraSharing:
    """A DRA object whose NVIDIA GpuConfig shares the allocated GPU (TimeSlicing or MPS)."""

    owner: K8sObject
    strategy: str
    pointer: Pointer


def _dra_configs(obj: K8sObject) -> tuple[Pointer, list[Any]]:
    base: Pointer = {
        "ResourceClaim": ("spec", "devices"),
        "ResourceClaimTemplate": ("spec", "spec", "devices"),
        "DeviceClass": ("spec",),
    }[obj.kind]
    configs = dig(obj.body, *base, "config")
    return (*base, "config"), configs if isinstance(configs, list) else []


def _claim_classes(obj: K8sObject) -> set[str]:
    base: Pointer = ("spec", "spec") if obj.kind == "ResourceClaimTemplate" else ("spec",)
    classes = set()
    for req in dig(obj.body, *base, "devices", "requests") or []:
        cls = dig(req, "deviceClassName") or dig(req, "exactly", "deviceClassName")
        if cls:
            classes.add(str(cls))
    return classes


@dataclass(frozen=True)
class NodeSharing:
    """How GPUs of one node are shared (strategy, replicas) and which config says so."""

    strategy: str
    replicas: int | None
    source: str
    certain: bool
    """False when several configs could apply and this is the worst of them."""
    owner_ref: str | None = None
    """The ConfigMap / config file that sets it (None: a node label)."""


class K8sView:
    """A cluster state plus the tenant model."""

    def __init__(
        self, state: ClusterState, inventory_tenants: Mapping[str, str] | None = None
    ) -> None:
        self.state = state
        self.inventory_tenants = dict(inventory_tenants or {})
        """Inventory tenant name -> data sensitivity."""

    # -- tenancy ---------------------------------------------------------------------------

    @cached_property
    def namespaces(self) -> Mapping[str, K8sObject]:
        """Namespaces by name."""
        return {ns.name: ns for ns in self.state.of("Namespace")}

    def tenant_of(self, namespace: str) -> str | None:
        """The tenant a namespace belongs to (label or inventory), None for other namespaces."""
        ns = self.namespaces.get(namespace)
        if ns is not None and ns.labels.get(TENANT_LABEL):
            return ns.labels[TENANT_LABEL]
        return namespace if namespace in self.inventory_tenants else None

    def sensitivity(self, namespace: str) -> str | None:
        """The data sensitivity of a namespace's tenant, when known."""
        tenant = self.tenant_of(namespace)
        if tenant is None:
            return None
        if tenant in self.inventory_tenants:
            return self.inventory_tenants[tenant]
        ns = self.namespaces.get(namespace)
        return ns.labels.get(SENSITIVITY_LABEL) if ns is not None else None

    def confidential(self, namespace: str) -> bool:
        """Whether the namespace's tenant brings confidential or regulated data."""
        return self.sensitivity(namespace) in CONFIDENTIAL

    @cached_property
    def tenant_namespaces(self) -> tuple[K8sObject, ...]:
        """Namespaces that belong to a tenant."""
        return tuple(ns for ns in self.namespaces.values() if self.tenant_of(ns.name))

    # -- workloads -------------------------------------------------------------------------

    @cached_property
    def pods(self) -> tuple[PodSpec, ...]:
        """Every workload's pod spec (Pods and pod templates of controllers)."""
        out: list[PodSpec] = []
        for kind, path in _TEMPLATE_PATHS.items():
            for obj in self.state.of(kind):
                spec = dig(obj.body, *path)
                if isinstance(spec, Mapping):
                    out.append(PodSpec(obj, path, spec))
        return tuple(out)

    @cached_property
    def pods_by_namespace(self) -> Mapping[str, tuple[PodSpec, ...]]:
        """Pod specs grouped by namespace."""
        index: dict[str, list[PodSpec]] = {}
        for pod in self.pods:
            index.setdefault(pod.namespace, []).append(pod)
        return {ns: tuple(pods) for ns, pods in index.items()}

    @cached_property
    def tenant_pods(self) -> tuple[PodSpec, ...]:
        """Pod specs in tenant namespaces."""
        return tuple(p for p in self.pods if self.tenant_of(p.namespace))

    @cached_property
    def gpu_claims(self) -> frozenset[tuple[str, str]]:
        """(namespace, name) of ResourceClaims/Templates asking for an NVIDIA GPU device class."""
        found: set[tuple[str, str]] = set()
        for obj in self.state.of("ResourceClaim", "ResourceClaimTemplate"):
            spec = obj.body.get("spec") or {}
            if obj.kind == "ResourceClaimTemplate":
                spec = dig(spec, "spec") or {}
            for req in dig(spec, "devices", "requests") or []:
                cls = dig(req, "deviceClassName") or dig(req, "exactly", "deviceClassName")
                if cls and _GPU_DEVICE_CLASS.search(str(cls)):
                    found.add((obj.namespace or "default", obj.name))
        return frozenset(found)

    def uses_gpu(self, pod: PodSpec) -> bool:
        """Whether ``pod`` requests an NVIDIA GPU (resources or claims on GPU device classes)."""
        return pod.uses_gpu(self.gpu_claims)

    @cached_property
    def dra_sharing(self) -> tuple[DraSharing, ...]:
        """ResourceClaims/Templates whose GPU is time-sliced or MPS-shared by the NVIDIA DRA
        driver, directly or through their DeviceClass's config."""
        shared_classes: dict[str, str] = {}
        found: list[DraSharing] = []
        for obj in self.state.of("DeviceClass", "ResourceClaim", "ResourceClaimTemplate"):
            base, configs = _dra_configs(obj)
            for i, item in enumerate(configs):
                if dig(item, "opaque", "driver") != DRA_DRIVER:
                    continue
                strategy = dig(item, "opaque", "parameters", "sharing", "strategy")
                if strategy in DRA_SHARING_STRATEGIES:
                    ptr = (*base, i, "opaque", "parameters", "sharing", "strategy")
                    if obj.kind == "DeviceClass":
                        shared_classes[obj.name] = str(strategy)
                    else:
                        found.append(DraSharing(obj, str(strategy), ptr))
                    break
        seen = {id(f.owner) for f in found}
        for obj in self.state.of("ResourceClaim", "ResourceClaimTemplate"):
            inherited = sorted(shared_classes[c] for c in _claim_classes(obj) & set(shared_classes))
            if inherited and id(obj) not in seen:
                found.append(DraSharing(obj, inherited[0], ("spec",)))
        return tuple(found)

    def claim_users(self, claim: K8sObject) -> tuple[PodSpec, ...]:
        """Pod specs that reference ``claim`` (by name, in its namespace)."""
        namespace = claim.namespace or "default"
        return tuple(
            p
            for p in self.pods_by_namespace.get(namespace, ())
            if (claim.kind, claim.name) in p.claim_refs()
        )

    @cached_property
    def hami_nodes(self) -> tuple[K8sObject, ...]:
        """Nodes whose GPUs HAMi's device plugin registered (it shares them between pods)."""
        return tuple(n for n in self.state.of("Node") if HAMI_NODE_ANNOTATION in n.annotations)

    @cached_property
    def gpu_nodes(self) -> tuple[K8sObject, ...]:
        """Nodes that expose NVIDIA GPUs (allocatable or capacity)."""
        out = []
        for node in self.state.of("Node"):
            capacity = dig(node.body, "status", "allocatable") or dig(
                node.body, "status", "capacity"
            )
            has_resource = isinstance(capacity, Mapping) and any(
                str(k).startswith("nvidia.com/") for k in capacity
            )
            labels = node.labels
            if (
                has_resource
                or labels.get("nvidia.com/gpu.present") == "true"
                or any(k.startswith("nvidia.com/gpu.") for k in labels)
            ):
                out.append(node)
        return tuple(out)

    def candidate_nodes(self, pod: PodSpec) -> tuple[K8sObject, ...]:
        """GPU nodes the scheduler could pick for ``pod`` (cached per scheduling constraints:
        thousands of pods share a handful of selector/affinity/toleration combinations)."""
        key = _scheduling_key(pod)
        found = self._candidates.get(key)
        if found is None:
            found = tuple(n for n in self.gpu_nodes if can_schedule(pod, n))
            self._candidates[key] = found
        return found

    @cached_property
    def _candidates(self) -> dict[str, tuple[K8sObject, ...]]:
        return {}

    # -- NVIDIA GPU Operator and device plugin ----------------------------------------------

    @cached_property
    def cluster_policy(self) -> K8sObject | None:
        """The GPU Operator's ClusterPolicy, if the cluster has one."""
        return next(self.state.of("ClusterPolicy.nvidia.com"), None)

    @cached_property
    def device_plugin_configs(self) -> tuple[DevicePluginConfig, ...]:
        """Every device-plugin sharing config found (ConfigMaps and config files)."""
        named = (
            dig(self.cluster_policy.body, "spec", "devicePlugin", "config", "name")
            if (self.cluster_policy)
            else None
        )
        out: list[DevicePluginConfig] = []
        for obj in self.state.of("ConfigMap"):
            if named and obj.name != named:
                continue
            data = obj.body.get("data")
            if not isinstance(data, Mapping):
                continue
            for key, text in data.items():
                config = _parse_config(str(text))
                if config is not None:
                    out.append(DevicePluginConfig(obj, str(key), ("data", str(key)), config))
        for obj in self.state.of(f"{DEVICE_PLUGIN_CONFIG}.gpufence.io"):
            config = obj.body.get("config")
            if isinstance(config, Mapping):
                out.append(DevicePluginConfig(obj, obj.name, ("config",), config))
        return tuple(out)

    def _default_key(self) -> str | None:
        if self.cluster_policy is None:
            return None
        value = dig(self.cluster_policy.body, "spec", "devicePlugin", "config", "default")
        return str(value) if value else None

    def sharing_on(self, node: K8sObject | None) -> NodeSharing | None:
        """How the device plugin shares GPUs on ``node`` (None: the default for every node)."""
        labels = node.labels if node is not None else {}
        if labels.get(SHARING_LABEL) in ("time-slicing", "mps"):
            replicas = labels.get(REPLICAS_LABEL, "")
            return NodeSharing(
                labels[SHARING_LABEL],
                int(replicas) if replicas.isdigit() else None,
                f"node label {SHARING_LABEL}",
                True,
            )
        configs = self.device_plugin_configs
        wanted = labels.get(DEVICE_PLUGIN_CONFIG_LABEL) or self._default_key()
        chosen = [c for c in configs if c.key == wanted] if wanted else list(configs)
        if not chosen:
            return None
        worst = max(chosen, key=lambda c: c.strategy != "none")
        counts = [*worst.replicas("mps").values(), *worst.replicas("timeSlicing").values()]
        return NodeSharing(
            worst.strategy,
            max(counts, default=None),
            f"{worst.owner.ref} {worst.label}",
            certain=len(chosen) == 1,
            owner_ref=worst.owner.ref,
        )

    # -- container toolkit -------------------------------------------------------------------

    def toolkit_accepts_env(self) -> tuple[bool, str]:
        """Does the container toolkit honour NVIDIA_VISIBLE_DEVICES from unprivileged pods?"""
        if self.cluster_policy is not None:
            for env in dig(self.cluster_policy.body, "spec", "toolkit", "env") or []:
                if dig(env, "name") == "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED":
                    accepts = str(dig(env, "value")).lower() != "false"
                    return accepts, f"{self.cluster_policy.ref} spec.toolkit.env"
        for obj in self.state.of("ConfigMap"):
            for key, text in (obj.body.get("data") or {}).items():
                match = re.search(
                    r"^\s*accept-nvidia-visible-devices-envvar-when-unprivileged\s*=\s*(\w+)",
                    str(text),
                    re.MULTILINE,
                )
                if match:
                    return match[1].lower() != "false", f"{obj.ref} [{key}]"
        return True, "not configured in the scanned objects; the toolkit default is to accept it"
