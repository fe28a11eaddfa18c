"""The inventory: what the operator declares about the cluster (YAML, validated, frozen).

Every fact that may be unknown is ``None`` by default, and controls that need it report
NOT_EVALUATED rather than guess. Names are the join keys between sections; the loader checks
that every reference resolves (a dangling reference is an input error with file:line:column).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from gpufence._frozen import Frozen
from gpufence.model.findings import Plane

__all__ = [
    "Bmc",
    "CcMode",
    "CcMultiGpuMode",
    "CpuTee",
    "DataSensitivity",
    "Demand",
    "ExportAuthorization",
    "ExportAuthorizationKind",
    "GpuState",
    "HostState",
    "Inventory",
    "KeyRelease",
    "Kms",
    "KmsKind",
    "Network",
    "NetworkKind",
    "NetworkPurpose",
    "Node",
    "NodePool",
    "Organization",
    "Ownership",
    "PlaneScope",
    "Scope",
    "Secrets",
    "SharingMode",
    "Site",
    "Storage",
    "Tenant",
    "TenantIsolation",
    "Trust",
    "VgpuMode",
    "Workload",
]

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$"),
]
"""A resource name: 1-64 characters, letters, digits, '.', '_', '-'; used in resource paths."""

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

MigGeometry = Annotated[tuple[str, ...], AfterValidator(lambda names: tuple(sorted(names)))]
"""MIG profile names on one GPU, kept sorted so declared and observed geometries compare."""
"""ISO 3166-1 alpha-2, upper case (e.g. DE, US, NO)."""


class Ownership(StrEnum):
    """Who controls the facility and the hardware of a site."""

    OWNED = "owned"
    COLOCATION = "colocation"
    RENTED = "rented"


class Trust(StrEnum):
    """How far the operator trusts a tenant: internal, partner or untrusted."""

    INTERNAL = "internal"
    PARTNER = "partner"
    UNTRUSTED = "untrusted"


class DataSensitivity(StrEnum):
    """The most sensitive data a tenant brings, from public to regulated."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    REGULATED = "regulated"

    @property
    def needs_protection(self) -> bool:
        """Confidential and regulated data need CC/ECC-grade protection."""
        return self in (DataSensitivity.CONFIDENTIAL, DataSensitivity.REGULATED)


class SharingMode(StrEnum):
    """How workloads share one physical GPU."""

    DEDICATED = "dedicated"
    """Whole GPUs: a GPU serves one workload at a time."""
    MIG = "mig"
    VGPU = "vgpu"
    MPS = "mps"
    TIME_SLICING = "time-slicing"


class CcMode(StrEnum):
    """Confidential-computing mode of the GPUs (NVIDIA `nvidia.com/cc.mode` values, less ppcie)."""

    OFF = "off"
    ON = "on"
    DEVTOOLS = "devtools"


class VgpuMode(StrEnum):
    """How NVIDIA vGPU shares a GPU (NVIDIA AI Enterprise vGPU modes)."""

    TIME_SLICED = "time-sliced"
    """vGPUs take turns on the whole GPU (the only mode on parts without MIG)."""
    MIG_BACKED = "mig-backed"
    """Each vGPU is a MIG instance of its own."""
    TIME_SLICED_MIG_BACKED = "time-sliced-mig-backed"
    """Several vGPUs take turns inside one MIG instance."""


class CpuTee(StrEnum):
    """The CPU trusted execution environment confidential VMs run in on a host."""

    SEV_SNP = "sev-snp"
    TDX = "tdx"


class CcMultiGpuMode(StrEnum):
    """NVML `multiGpuMode`: how several GPUs in one confidential VM are protected."""

    NONE = "none"
    PROTECTED_PCIE = "protected-pcie"
    NVLE = "nvle"


class NetworkKind(StrEnum):
    """The link layer of a network: Ethernet or InfiniBand."""

    ETHERNET = "ethernet"
    INFINIBAND = "infiniband"


class NetworkPurpose(StrEnum):
    """What a network carries (compute, storage, management, OOB, ...)."""

    COMPUTE = "compute"
    STORAGE = "storage"
    MANAGEMENT = "management"
    OOB = "oob"
    TENANT = "tenant"
    """Tenant-facing front-end network (ingress, SSH, the tenant's own services)."""


class TenantIsolation(StrEnum):
    """How tenants sharing one network are kept apart on it."""

    NONE = "none"
    PKEY = "pkey"
    VLAN = "vlan"
    VXLAN = "vxlan"
    VRF = "vrf"


class KmsKind(StrEnum):
    """The kind of key management system that holds data keys."""

    VAULT = "vault"
    CLOUD_KMS = "cloud-kms"
    HSM = "hsm"
    KUBERNETES_SECRETS = "kubernetes-secrets"
    FILE = "file"
    NONE = "none"

    @property
    def is_real_kms(self) -> bool:
        """A key store with access control, audit and key wrapping (not a file or a Secret)."""
        return self in (KmsKind.VAULT, KmsKind.CLOUD_KMS, KmsKind.HSM)


class Organization(Frozen):
    """The operator of the cluster (its country matters for export rules)."""

    name: str = Field(description="Operator of the cluster.")
    country: CountryCode = Field(
        description="Country of the owning entity (ISO 3166-1 alpha-2); its headquarters unless "
        "headquarters_country says otherwise."
    )
    headquarters_country: CountryCode | None = Field(
        default=None,
        description="Country of the owner's headquarters when it differs from `country` "
        "(export-control headquarters rule, 15 CFR 744.23(a)(3)).",
    )
    ultimate_parent_country: CountryCode | None = Field(
        default=None,
        description="Headquarters country of the owner's ultimate parent company, if any.",
    )

    @property
    def headquarters(self) -> tuple[str, ...]:
        """Countries the headquarters rule looks at: own headquarters and ultimate parent's."""
        own = self.headquarters_country or self.country
        parent = self.ultimate_parent_country
        return (own,) if parent is None or parent == own else (own, parent)


class ExportAuthorizationKind(StrEnum):
    """How an export is authorised: a licence or a licence exception."""

    LICENCE = "licence"
    LICENCE_EXCEPTION = "licence-exception"


class ExportAuthorization(Frozen):
    """An export licence or licence exception recorded for a site (see docs/export-control.md)."""

    kind: ExportAuthorizationKind
    reference: str = Field(
        min_length=1, description="Licence number, or the licence exception's symbol."
    )
    gpu_models: tuple[str, ...] = Field(
        default=(),
        description="GPU models it covers (any catalog name); empty: every model at the site.",
    )
    expires: date | None = Field(default=None, description="Last day it is valid.")


class Site(Frozen):
    """A data centre the cluster runs in, with its country and ownership."""

    name: Name
    country: CountryCode
    ownership: Ownership = Field(
        description="owned: your facility and hardware; colocation: your hardware in someone "
        "else's facility; rented: capacity rented from a provider (you do not control the host)."
    )
    export_authorizations: tuple[ExportAuthorization, ...] = Field(
        default=(),
        description="Export licences or licence exceptions covering GPUs at this site.",
    )


class Demand(Frozen):
    """GPU capacity a tenant asks for (input of `gpufence plan`).

    Exactly one of ``gpus`` (whole GPUs) or ``mig_profile`` (MIG instances) is given.
    """

    gpus: int | None = Field(default=None, ge=1, description="Whole GPUs wanted.")
    gpus_per_job: int = Field(
        default=1, ge=1, description="GPUs one job spans (placed on one node, NVLink-connected)."
    )
    mig_profile: str | None = Field(
        default=None, description="MIG profile name as the GPU model exposes it, e.g. 3g.40gb."
    )
    count: int = Field(default=1, ge=1, description="How many MIG instances of that profile.")
    gpu_model: str | None = Field(
        default=None, description="Restrict to this GPU model (any catalog name or PCI ID)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Demand:
        if (self.gpus is None) == (self.mig_profile is None):
            raise ValueError("give exactly one of 'gpus' or 'mig_profile'")
        if self.mig_profile is not None and self.gpus_per_job != 1:
            raise ValueError("gpus_per_job applies to whole-GPU demand only")
        return self


class Tenant(Frozen):
    """A customer or team using the cluster: trust, data sensitivity and GPU demand."""

    name: Name
    trust: Trust
    data_sensitivity: DataSensitivity
    description: str | None = None
    demand: tuple[Demand, ...] = Field(
        default=(), description="Capacity the tenant asks for (used by `gpufence plan`)."
    )


class Workload(Frozen):
    """A tenant's workload on a node pool."""

    tenant: Name
    gpus_per_job: int = Field(
        default=1, ge=1, description="GPUs one job spans; >1 means multi-GPU (NVLink/PCIe P2P)."
    )


class GpuState(Frozen):
    """Declared GPU state. ``None`` = not declared (controls then report NOT_EVALUATED)."""

    mig: bool | None = Field(default=None, description="MIG mode enabled.")
    vgpu: bool | None = Field(default=None, description="GPUs served through vGPU.")
    vgpu_mode: VgpuMode | None = Field(
        default=None,
        description="vGPU mode: time-sliced, mig-backed or time-sliced-mig-backed (time-sliced "
        "modes across tenants are judged like time-slicing).",
    )
    ecc: bool | None = Field(default=None, description="ECC enabled.")
    cc_mode: CcMode | None = None
    cc_multi_gpu: CcMultiGpuMode | None = None
    mig_geometry: MigGeometry | None = Field(
        default=None,
        description="MIG instances on each GPU, as profile names (e.g. [3g.40gb, 2g.20gb]).",
    )


class HostState(Frozen):
    """Declared host firmware state."""

    secure_boot: bool | None = None
    cpu_tee: CpuTee | None = Field(
        default=None,
        description="CPU TEE of the host's confidential VMs (sev-snp or tdx): picks the "
        "Confidential Containers runtime class the plan writes.",
    )


class Node(Frozen):
    """One GPU server of a pool, with per-node overrides and InfiniBand port GUIDs."""

    name: Name
    bmc: Name | None = Field(default=None, description="Name of this node's BMC (bmcs section).")
    tenants: tuple[Name, ...] | None = Field(
        default=None,
        description="Tenants whose workloads run on this node; default: all of the pool's.",
    )
    gpu_state: GpuState | None = Field(default=None, description="Overrides the pool's.")
    host: HostState | None = Field(default=None, description="Overrides the pool's.")
    ib_port_guids: tuple[str, ...] = Field(
        default=(), description="Port GUIDs of the node's InfiniBand HCAs (0x-prefixed hex)."
    )


class NodePool(Frozen):
    """Identical GPU servers: model, sharing mode, workloads, networks and declared state."""

    name: Name
    site: Name
    gpu_model: str = Field(description="Any name, alias or PCI ID that `gpufence catalog` knows.")
    gpus_per_node: int = Field(ge=1, le=72)
    sharing: SharingMode
    tenant_root: bool = Field(
        default=False,
        description="Tenants get root on the host (bare-metal rental): every network the "
        "nodes attach to is then reachable by the tenant.",
    )
    workloads: tuple[Workload, ...] = ()
    networks: tuple[Name, ...] = Field(
        default=(), description="Networks the nodes' NICs attach to (BMC ports excluded)."
    )
    gpu_state: GpuState = GpuState()
    host: HostState = HostState()
    nodes: tuple[Node, ...] = Field(min_length=1)


class Bmc(Frozen):
    """A baseboard management controller: where it is reachable and what is known about it."""

    name: Name
    address: str = Field(description="Host name, IP address or https URL of the BMC.")
    network: Name = Field(description="Network the BMC's management port sits on.")
    vendor: str | None = None
    firmware_version: str | None = None
    default_credentials: bool | None = Field(
        default=None, description="A factory-default account/password still works."
    )
    ipmi_over_lan: bool | None = Field(default=None, description="IPMI over LAN (UDP 623) on.")
    shared_nic: bool | None = Field(
        default=None, description="The BMC shares a host NIC (NC-SI / shared LOM)."
    )


class Network(Frozen):
    """A network segment: kind, purposes, tenants, isolation and L3 reachability."""

    name: Name
    kind: NetworkKind
    purposes: tuple[NetworkPurpose, ...] = Field(min_length=1)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    pkey: int | None = Field(default=None, ge=1, le=0x7FFF)
    tenant_isolation: TenantIsolation | None = Field(
        default=None, description="How tenants sharing this network are separated on it."
    )
    tenants: tuple[Name, ...] = Field(
        default=(), description="Tenants whose traffic this network carries by design."
    )
    routed_to: tuple[Name, ...] = Field(
        default=(),
        description="Networks this one can reach at L3 (routing, peering, VRF leak); symmetric.",
    )
    internet: bool = Field(default=False, description="Reachable from the internet.")
    vni: int | None = Field(
        default=None, ge=1, le=0xFFFFFF, description="VXLAN VNI; networks with one VNI are one L2."
    )
    vrf: str | None = Field(
        default=None, description="VRF the network is attached to; one VRF routes its networks."
    )
    partitions_conf: str | None = Field(
        default=None,
        description="OpenSM partitions.conf of this InfiniBand subnet (path relative to the "
        "inventory file).",
    )

    @field_validator("pkey", mode="before")
    @classmethod
    def _pkey_from_hex(cls, value: object) -> object:
        # PKeys are written in hex (0x8001); the membership bit is not part of the key.
        if isinstance(value, str):
            try:
                value = int(value, 16) if value.lower().startswith("0x") else int(value)
            except ValueError:
                return value
        if isinstance(value, int):
            return value & 0x7FFF
        return value


class Storage(Frozen):
    """A storage system and what it holds for whom."""

    name: Name
    holds: tuple[Literal["weights", "datasets", "checkpoints", "logs"], ...] = Field(min_length=1)
    tenants: tuple[Name, ...] = ()
    encrypted_at_rest: bool | None = None
    kms: Name | None = Field(default=None, description="KMS holding the data keys.")


class Kms(Frozen):
    """A key management system."""

    name: Name
    kind: KmsKind


class KeyRelease(Frozen):
    """How model-weight keys reach the GPUs."""

    mechanism: Literal["attestation-broker", "kms-direct", "manual", "baked-in", "none"]
    requires_attestation: bool = Field(
        description="Keys are released only on a passing GPU attestation verdict."
    )
    broker_config: str | None = Field(
        default=None,
        description="The `gpufence broker` configuration file (path relative to the inventory).",
    )


class Secrets(Frozen):
    """Where keys live and how model-weight keys reach the GPUs."""

    kms: tuple[Kms, ...] = ()
    key_release: KeyRelease | None = None


class PlaneScope(Frozen):
    """Whether one control plane is part of this cluster (e.g. no Kubernetes at all)."""

    in_scope: bool = Field(description="False: this plane does not exist here.")
    reason: str | None = Field(
        default=None,
        min_length=10,
        description="Why the plane is out of scope; required when in_scope is false, and shown "
        "in every NOT_APPLICABLE finding.",
    )

    @model_validator(mode="after")
    def _reason_when_out(self) -> PlaneScope:
        if not self.in_scope and not self.reason:
            raise ValueError("a plane declared out of scope needs a reason (reason: ...)")
        return self


class Scope(Frozen):
    """Planes the inventory declares out of scope; their controls report NOT_APPLICABLE.

    A plane left out here is in scope: its controls run and, without evidence, say
    NOT_EVALUATED (and the verdict is INCOMPLETE).
    """

    gpu: PlaneScope | None = None
    confidential_computing: PlaneScope | None = None
    oob: PlaneScope | None = Field(default=None, description="Out-of-band (BMC) plane.")
    firmware: PlaneScope | None = None
    fabric: PlaneScope | None = Field(default=None, description="InfiniBand and Ethernet fabric.")
    kubernetes: PlaneScope | None = None
    data: PlaneScope | None = Field(default=None, description="Data & secrets plane.")
    compliance: PlaneScope | None = None

    def out_of_scope(self) -> dict[Plane, tuple[str, str]]:
        """Plane -> (its key in ``scope``, the reason) for each plane declared out of scope."""
        out: dict[Plane, tuple[str, str]] = {}
        for key, plane in _SCOPE_PLANES.items():
            declared: PlaneScope | None = getattr(self, key)
            if declared is not None and not declared.in_scope:
                out[plane] = (key, declared.reason or "")
        return out


_SCOPE_PLANES = {
    "gpu": Plane.GPU,
    "confidential_computing": Plane.CC,
    "oob": Plane.OOB,
    "firmware": Plane.FW,
    "fabric": Plane.FAB,
    "kubernetes": Plane.K8S,
    "data": Plane.DAT,
    "compliance": Plane.CMP,
}


class Inventory(Frozen):
    """A GPU cluster as declared by its operator."""

    version: Literal[1] = Field(description="Inventory format version.")
    organization: Organization
    sites: tuple[Site, ...] = Field(min_length=1)
    tenants: tuple[Tenant, ...] = ()
    node_pools: tuple[NodePool, ...] = ()
    bmcs: tuple[Bmc, ...] = ()
    networks: tuple[Network, ...] = ()
    storage: tuple[Storage, ...] = ()
    secrets: Secrets = Secrets()
    scope: Scope = Field(
        default=Scope(),
        description="Planes that do not exist in this cluster (e.g. kubernetes: {in_scope: "
        "false, reason: ...}); their controls report NOT_APPLICABLE with the reason.",
    )
