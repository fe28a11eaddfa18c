"""Read a live cluster through the official ``kubernetes`` client and the user's kubeconfig.

Every kind is listed cluster-wide (paged). A refusal (401/403) or any other failure marks the
kind unreadable with the API server's reason, so the controls that need it say NOT_EVALUATED; a
404 on a custom resource means the CRD is not installed, i.e. there are none (noted). TLS
verification follows the kubeconfig (on unless it says insecure-skip-tls-verify); tokens and
client keys are never printed.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

from gpufence.errors import InputError
from gpufence.kubernetes.objects import ClusterState, K8sObject, kind_key

__all__ = ["LIVE_RESOURCES", "load_live"]

# (kind, apiVersion candidates in order, plural). Built-in kinds first.
LIVE_RESOURCES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Namespace", ("v1",), "namespaces"),
    ("Node", ("v1",), "nodes"),
    ("Pod", ("v1",), "pods"),
    ("ConfigMap", ("v1",), "configmaps"),
    ("ResourceQuota", ("v1",), "resourcequotas"),
    ("Deployment", ("apps/v1",), "deployments"),
    ("StatefulSet", ("apps/v1",), "statefulsets"),
    ("DaemonSet", ("apps/v1",), "daemonsets"),
    ("Job", ("batch/v1",), "jobs"),
    ("CronJob", ("batch/v1",), "cronjobs"),
    ("NetworkPolicy", ("networking.k8s.io/v1",), "networkpolicies"),
    (
        "ResourceClaim",
        ("resource.k8s.io/v1", "resource.k8s.io/v1beta2", "resource.k8s.io/v1beta1"),
        "resourceclaims",
    ),
    (
        "ResourceClaimTemplate",
        ("resource.k8s.io/v1", "resource.k8s.io/v1beta2", "resource.k8s.io/v1beta1"),
        "resourceclaimtemplates",
    ),
    (
        "DeviceClass",
        ("resource.k8s.io/v1", "resource.k8s.io/v1beta2", "resource.k8s.io/v1beta1"),
        "deviceclasses",
    ),
    ("ClusterPolicy", ("nvidia.com/v1",), "clusterpolicies"),
    (
        "ClusterImagePolicy",
        ("policy.sigstore.dev/v1beta1", "policy.sigstore.dev/v1alpha1"),
        "clusterimagepolicies",
    ),
    ("ClusterPolicy", ("kyverno.io/v1",), "clusterpolicies"),
    ("Policy", ("kyverno.io/v1",), "policies"),
    (
        "ImageValidatingPolicy",
        ("policies.kyverno.io/v1", "policies.kyverno.io/v1beta1", "policies.kyverno.io/v1alpha1"),
        "imagevalidatingpolicies",
    ),
    ("NetworkAttachmentDefinition", ("k8s.cni.cncf.io/v1",), "network-attachment-definitions"),
)

_PAGE = 500
# API groups every conformant server serves: a 404 there is an error, not "not installed".
_ALWAYS_SERVED = {"", "apps", "batch", "networking.k8s.io"}


def _client_module() -> Any:
    try:
        return importlib.import_module("kubernetes")
    except ImportError:
        raise InputError(
            "the live scan needs the official Kubernetes client",
            hint="pip install 'gpufence[k8s]' (the `kubernetes` package)",
        ) from None


def _path(api_version: str, plural: str) -> str:
    return (
        f"/api/{api_version}/{plural}"
        if "/" not in api_version
        else (f"/apis/{api_version}/{plural}")
    )


def _reason(status: int, data: bytes) -> str:
    try:
        message = json.loads(data).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    label = {401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Not Found"}.get(
        status, f"HTTP {status}"
    )
    return f"{label}: {message}" if message else label


class _Lister:
    def __init__(self, api: Any, server: str) -> None:
        self.api = api
        self.server = server

    def get(self, path: str, query: list[tuple[str, Any]]) -> tuple[int, bytes]:
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(method, url, header_params=headers)
        except Exception as exc:  # noqa: BLE001 - urllib3/SSL errors: reported, not a crash
            raise InputError(
                f"cannot reach the Kubernetes API server at {self.server}: {type(exc).__name__}",
                hint="check the kubeconfig's server address, certificates and network",
            ) from None
        return int(response.status), response.read() or b""

    def items(self, path: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", _PAGE)]
            if token:
                query.append(("continue", token))
            status, data = self.get(path, query)
            if status != 200:
                raise _Refused(status, _reason(status, data))
            try:
                page = json.loads(data)
            except ValueError:
                raise _Refused(status, "the API server sent a response that is not JSON") from None
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def load_live(kubeconfig: str | None = None, context: str | None = None) -> ClusterState:
    """List every kind gpufence needs from the cluster the kubeconfig points at."""
    k8s = _client_module()
    configuration = k8s.client.Configuration()
    try:
        k8s.config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except Exception as exc:  # noqa: BLE001 - ConfigException and file errors alike
        raise InputError(
            f"cannot load the kubeconfig: {exc}",
            hint="pass --kubeconfig FILE (and --context NAME) or set KUBECONFIG",
        ) from None
    server = str(configuration.host)
    lister = _Lister(k8s.client.ApiClient(configuration), server)
    objects: list[K8sObject] = []
    unreadable: dict[str, str] = {}
    notes: list[str] = []
    if not configuration.verify_ssl:
        notes.append(f"TLS verification is off for {server} (kubeconfig insecure-skip-tls-verify)")
    for kind, versions, plural in LIVE_RESOURCES:
        key = kind_key(kind, versions[0])
        last: _Refused | None = None
        for api_version in versions:
            try:
                items = list(lister.items(_path(api_version, plural)))
            except _Refused as refused:
                last = refused
                if refused.status == 404:
                    continue  # try the next served version
                break
            last = None
            for item in items:
                meta = item.get("metadata") or {}
                objects.append(
                    K8sObject(
                        api_version=api_version,
                        kind=kind,
                        name=str(meta.get("name", "<unnamed>")),
                        namespace=meta.get("namespace"),
                        body={"apiVersion": api_version, "kind": kind, **item},
                        source=f"live:{server}",
                    )
                )
            break
        if last is None:
            continue
        group = versions[0].split("/")[0] if "/" in versions[0] else ""
        if last.status == 404 and group not in _ALWAYS_SERVED:
            notes.append(f"{key}: not installed (no such API on the server)")
        else:
            unreadable[key] = last.reason
    return ClusterState(
        objects=tuple(objects),
        unreadable=unreadable,
        sources=(f"live:{server}",),
        notes=tuple(notes),
        live=True,
    )
