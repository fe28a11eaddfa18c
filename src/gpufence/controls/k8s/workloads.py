"""Workloads in tenant namespaces (K8S-003 .. K8S-005): privileged pods, GPU host paths, NVIDIA
environment variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gpufence.controls.engine import Outcome
from gpufence.controls.k8s._base import (
    _DEVICE_PLUGIN,
    _PSA,
    _TOOLKIT,
    _container_name,
    _k8s_control,
    _per_namespace_pass,
    _tenant_namespaces,
)
from gpufence.kubernetes.view import (
    NVIDIA_ENV_VARS,
    K8sView,
    PodSpec,
    dig,
    is_nvidia_host_path,
)
from gpufence.model.findings import Plane, Severity, Status

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
