"""Admission policies and per-tenant manifests that enforce the K8S-* tenancy rules.

``gpufence k8s policies --out DIR`` writes:

- ``admission-policies.yaml``: ValidatingAdmissionPolicy + ValidatingAdmissionPolicyBinding
  (admissionregistration.k8s.io/v1, CEL) for the per-object rules;
- ``kyverno-policies.yaml``: Kyverno ClusterPolicies with the same CEL expressions;
- ``tenant-namespaces.yaml``: per tenant namespace the labels (tenant, Pod Security), a
  default-deny NetworkPolicy, DNS egress, and a GPU ResourceQuota when a quota is given;
- ``image-signatures.yaml``: a Kyverno verifyImages policy, when a signer identity is given.

The CEL of every rule is kept here as data (:data:`ADMISSION_RULES`) so tests evaluate the very
expressions that are emitted. Only core CEL is used (no Kubernetes string extensions), so any
CEL implementation can evaluate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpufence.errors import InputError
from gpufence.kubernetes.view import (
    CC_MODE_LABEL,
    COCO_RUNTIME_CLASSES,
    NETWORKS_ANNOTATION,
    NVIDIA_ENV_VARS,
    NVIDIA_HOST_PATH_PATTERN,
    PSA_ENFORCE_LABEL,
    SENSITIVITY_LABEL,
    TENANT_LABEL,
)

__all__ = ["ADMISSION_RULES", "AdmissionRule", "TenantNamespace", "write_policies"]

_TENANT_SELECTOR: dict[str, Any] = {
    "matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]
}
_CONFIDENTIAL_SELECTOR: dict[str, Any] = {
    "matchExpressions": [
        {"key": TENANT_LABEL, "operator": "Exists"},
        {"key": SENSITIVITY_LABEL, "operator": "In", "values": ["confidential", "regulated"]},
    ]
}


def _every_container(predicate: str) -> str:
    """CEL: ``predicate`` (over ``c``) holds for every container and init container."""
    return (
        f"object.spec.containers.all(c, {predicate}) && "
        f"(!has(object.spec.initContainers) || object.spec.initContainers.all(c, {predicate}))"
    )


def _requests(kind: str) -> str:
    return (
        f"(has(c.resources) && has(c.resources.{kind}) && "
        f"c.resources.{kind}.exists(k, k.startsWith('nvidia.com/')))"
    )


_NVIDIA_ENV_LIST = "[" + ", ".join(f"'{name}'" for name in NVIDIA_ENV_VARS) + "]"
_COCO_LIST = "[" + ", ".join(f"'{name}'" for name in COCO_RUNTIME_CLASSES) + "]"
_NETWORKS = f"object.metadata.annotations['{NETWORKS_ANNOTATION}']"


@dataclass(frozen=True)
class AdmissionRule:
    """One admission rule: which objects, which namespaces, and the CEL that must hold."""

    name: str
    control: str
    expression: str
    message: str
    resources: tuple[tuple[str, tuple[str, ...], str], ...] = (("", ("v1",), "pods"),)
    """(apiGroup, apiVersions, resource)."""
    namespace_selector: Mapping[str, Any] = field(default_factory=lambda: _TENANT_SELECTOR)
    variables: tuple[tuple[str, str], ...] = ()
    match_policy: str = "Equivalent"


ADMISSION_RULES: tuple[AdmissionRule, ...] = (
    AdmissionRule(
        name="gpufence-no-privileged-containers",
        control="K8S-003",
        expression=_every_container(
            "!has(c.securityContext) || !has(c.securityContext.privileged) || "
            "!c.securityContext.privileged"
        ),
        message="privileged containers see every GPU of the node; not allowed for tenants",
    ),
    AdmissionRule(
        name="gpufence-no-gpu-host-paths",
        control="K8S-004",
        expression=(
            "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath) || "
            f"!v.hostPath.path.matches('{NVIDIA_HOST_PATH_PATTERN}'))"
        ),
        message="hostPath volumes of GPU devices, the driver or / are not allowed for tenants",
    ),
    AdmissionRule(
        name="gpufence-no-nvidia-device-env",
        control="K8S-005",
        expression=_every_container(
            f"!has(c.env) || c.env.all(e, !(e.name in {_NVIDIA_ENV_LIST}))"
        ),
        message="tenants may not select GPUs with NVIDIA_* environment variables",
    ),
    AdmissionRule(
        name="gpufence-confidential-on-cc-nodes",
        control="K8S-012",
        variables=(
            (
                "requestsGpu",
                f"object.spec.containers.exists(c, {_requests('limits')} || "
                f"{_requests('requests')})",
            ),
        ),
        expression=(
            "!variables.requestsGpu || (has(object.spec.nodeSelector) && "
            f"'{CC_MODE_LABEL}' in object.spec.nodeSelector && "
            f"object.spec.nodeSelector['{CC_MODE_LABEL}'] == 'on')"
        ),
        message="GPU pods of confidential tenants must select nodes with nvidia.com/cc.mode=on",
        namespace_selector=_CONFIDENTIAL_SELECTOR,
    ),
    AdmissionRule(
        name="gpufence-confidential-containers",
        control="K8S-014",
        variables=(
            (
                "requestsGpu",
                f"object.spec.containers.exists(c, {_requests('limits')} || "
                f"{_requests('requests')})",
            ),
        ),
        expression=(
            "!variables.requestsGpu || (has(object.spec.runtimeClassName) && "
            f"object.spec.runtimeClassName in {_COCO_LIST} && "
            + _every_container(
                "!has(c.resources) || !has(c.resources.limits) || "
                "!c.resources.limits.exists(k, k == 'nvidia.com/gpu' || "
                "k.startsWith('nvidia.com/mig-'))"
            )
            + ")"
        ),
        message="GPU pods of confidential tenants run as NVIDIA Confidential Containers: "
        "runtimeClassName kata-qemu-nvidia-gpu-snp or -tdx, GPUs as nvidia.com/pgpu",
        namespace_selector=_CONFIDENTIAL_SELECTOR,
    ),
    AdmissionRule(
        name="gpufence-own-namespace-networks",
        control="K8S-011",
        expression=(
            "!has(object.metadata.annotations) || "
            f"!('{NETWORKS_ANNOTATION}' in object.metadata.annotations) || "
            f"({_NETWORKS}.matches('^[ ]*[[]') ? !{_NETWORKS}.matches('\"namespace\"') : "
            f"{_NETWORKS}.matches('^[ ]*((' + object.metadata.namespace + "
            "'/)?[^,/@ ]+(@[^, ]+)?[ ]*(,[ ]*|$))*$'))"
        ),
        message="tenants may attach only secondary networks of their own namespace",
    ),
    AdmissionRule(
        name="gpufence-no-dra-admin-access",
        control="K8S-010",
        resources=(("resource.k8s.io", ("v1",), "resourceclaims"),),
        expression=(
            "!has(object.spec.devices) || !has(object.spec.devices.requests) || "
            "object.spec.devices.requests.all(r, !(has(r.exactly) && "
            "has(r.exactly.adminAccess) && r.exactly.adminAccess))"
        ),
        message="DRA adminAccess is for admin namespaces, not tenants",
    ),
    AdmissionRule(
        name="gpufence-no-dra-admin-access-templates",
        control="K8S-010",
        resources=(("resource.k8s.io", ("v1",), "resourceclaimtemplates"),),
        expression=(
            "!has(object.spec.spec.devices) || !has(object.spec.spec.devices.requests) || "
            "object.spec.spec.devices.requests.all(r, !(has(r.exactly) && "
            "has(r.exactly.adminAccess) && r.exactly.adminAccess))"
        ),
        message="DRA adminAccess is for admin namespaces, not tenants",
    ),
    AdmissionRule(
        name="gpufence-no-dra-admin-access-v1beta1",
        control="K8S-010",
        resources=(("resource.k8s.io", ("v1beta1",), "resourceclaims"),),
        expression=(
            "!has(object.spec.devices) || !has(object.spec.devices.requests) || "
            "object.spec.devices.requests.all(r, !(has(r.adminAccess) && r.adminAccess))"
        ),
        message="DRA adminAccess is for admin namespaces, not tenants",
        match_policy="Exact",
    ),
)


def _vap(rule: AdmissionRule) -> list[dict[str, Any]]:
    policy: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": rule.name, "labels": {"gpufence.io/control": rule.control}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "matchPolicy": rule.match_policy,
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": list(versions),
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [resource],
                    }
                    for group, versions, resource in rule.resources
                ],
            },
            "validations": [
                {"expression": rule.expression, "message": rule.message, "reason": "Forbidden"}
            ],
        },
    }
    if rule.variables:
        policy["spec"]["variables"] = [{"name": n, "expression": e} for n, e in rule.variables]
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": rule.name},
        "spec": {
            "policyName": rule.name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": dict(rule.namespace_selector)},
        },
    }
    return [policy, binding]


_KYVERNO_KINDS = {"pods": "Pod", "resourceclaims": "ResourceClaim"}


def _kyverno(rule: AdmissionRule) -> dict[str, Any] | None:
    kinds = [_KYVERNO_KINDS.get(res) for _, _, res in rule.resources]
    if None in kinds or rule.match_policy == "Exact":
        return None  # templates and version-pinned variants: the VAP covers them
    validate: dict[str, Any] = {
        "failureAction": "Enforce",
        "cel": {"expressions": [{"expression": rule.expression, "message": rule.message}]},
    }
    if rule.variables:
        validate["cel"]["variables"] = [{"name": n, "expression": e} for n, e in rule.variables]
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": rule.name, "labels": {"gpufence.io/control": rule.control}},
        "spec": {
            "background": False,
            "rules": [
                {
                    "name": rule.name,
                    "match": {
                        "any": [
                            {
                                "resources": {
                                    "kinds": kinds,
                                    "namespaceSelector": dict(rule.namespace_selector),
                                }
                            }
                        ]
                    },
                    "validate": validate,
                }
            ],
        },
    }


@dataclass(frozen=True)
class TenantNamespace:
    """A tenant namespace to write policies for: tenant, data sensitivity, GPU resources used."""

    name: str
    tenant: str
    sensitivity: str | None = None
    gpu_resources: tuple[str, ...] = ()
    """nvidia.com/* resources its workloads request (each gets a quota line)."""


def _namespace_objects(ns: TenantNamespace, gpu_quota: int | None) -> list[dict[str, Any]]:
    labels = {
        TENANT_LABEL: ns.tenant,
        PSA_ENFORCE_LABEL: "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
    if ns.sensitivity:
        labels[SENSITIVITY_LABEL] = ns.sensitivity
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns.name, "labels": labels}},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "gpufence-default-deny", "namespace": ns.name},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "gpufence-allow-dns", "namespace": ns.name},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": 53},
                            {"protocol": "TCP", "port": 53},
                        ],
                    }
                ],
            },
        },
    ]
    if gpu_quota is not None:
        resources = sorted({"nvidia.com/gpu", *ns.gpu_resources})
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "gpufence-gpu-quota", "namespace": ns.name},
                "spec": {"hard": {f"requests.{r}": str(gpu_quota) for r in resources}},
            }
        )
    return out


def _signature_policy(issuer: str, subject: str) -> dict[str, Any]:
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "gpufence-verify-image-signatures"},
        "spec": {
            "webhookTimeoutSeconds": 30,
            "rules": [
                {
                    "name": "verify-signatures",
                    "match": {
                        "any": [
                            {
                                "resources": {
                                    "kinds": ["Pod"],
                                    "namespaceSelector": _TENANT_SELECTOR,
                                }
                            }
                        ]
                    },
                    "verifyImages": [
                        {
                            "imageReferences": ["*"],
                            "failureAction": "Enforce",
                            "mutateDigest": True,
                            "attestors": [
                                {"entries": [{"keyless": {"issuer": issuer, "subject": subject}}]}
                            ],
                        }
                    ],
                }
            ],
        },
    }


def _dump(documents: Sequence[Mapping[str, Any]]) -> str:
    header = "# Generated by `gpufence k8s policies`; review before applying.\n"
    return header + yaml.safe_dump_all(documents, sort_keys=False, width=100)


def write_policies(
    out: Path,
    namespaces: Sequence[TenantNamespace],
    *,
    gpu_quota: int | None = None,
    signature_issuer: str | None = None,
    signature_subject: str | None = None,
) -> dict[str, Path]:
    """Write the manifests into ``out`` (created); return file purpose -> path."""
    if (signature_issuer is None) != (signature_subject is None):
        raise InputError("give both --signature-issuer and --signature-subject, or neither")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create: {exc.strerror or exc}") from exc
    files: dict[str, list[Mapping[str, Any]]] = {
        "admission-policies.yaml": [doc for r in ADMISSION_RULES for doc in _vap(r)],
        "kyverno-policies.yaml": [k for r in ADMISSION_RULES if (k := _kyverno(r))],
    }
    if namespaces:
        files["tenant-namespaces.yaml"] = [
            doc for ns in namespaces for doc in _namespace_objects(ns, gpu_quota)
        ]
    if signature_issuer and signature_subject:
        files["image-signatures.yaml"] = [_signature_policy(signature_issuer, signature_subject)]
    written: dict[str, Path] = {}
    for name, documents in files.items():
        path = out / name
        try:
            path.write_text(_dump(documents), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        written[name] = path
    return written
