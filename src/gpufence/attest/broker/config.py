"""The key broker's configuration file, and what the audit learns from it.

```yaml
broker:
  audience: gpufence-broker/prod      # tokens carry it; a token for another audience is refused
  listen: {host: 127.0.0.1, port: 8443}  # + tls_cert/tls_key; required off loopback
  nonce_ttl_s: 60                     # challenge lifetime (single use)
  token_ttl_s: 300                    # release-token lifetime (single use)
  database: broker.db                 # SQLite file (one host) or postgresql://USER@HOST/DB:
                                      # secrets, nonces, spent tokens and the decision log
  signing_key: signing-key.pem        # EC P-384 PEM: signs audit-log heads (and es384 tokens)
  token_alg: hs256                    # hs256 (MAC under a KEK-derived key) | es384 (signing_key)
  kek: {source: file, path: kek.bin}  # file | env (name) | embedded (development only) | <plugin>
  revocation: {mode: offline}         # offline | ocsp (online, with a nonce)
  limits: {max_body_bytes: 262144, max_devices: 16, rate_per_s: 20, burst: 40}  # per client
  workers: 1                          # processes; >1 with es384 tokens needs signing_key
  sqlite_synchronous: full            # full (fsync every commit) | normal (WAL, no fsync)
  rims: [NV_GPU_DRIVER_GH100_550.90.07.xml, ...]
  policies:                           # named attestation policies (file or inline mapping)
    acme-h200: acme-policy.yaml
    initech-h100: {id: initech-h100, version: 1, ...}
  resources:                          # every stored secret: its owner tenant and its policy
    acme-weights: {tenant: acme-ai, policy: acme-h200}
    initech-weights: {tenant: initech, policy: initech-h100}
  policy: policy.yaml                 # optional default for resources that name no policy
```

A token names the resources whose policy the requester's evidence satisfies, and nothing else
is released with it. Without ``resources:`` (the older form) every stored secret falls under the
single ``policy:`` and belongs to no tenant: the audit reports that. A declared resource with no
policy (none named, no default) is never released.

Paths are relative to the configuration file. :func:`key_release_evidence` turns the file into
an evidence document (subject ``secrets/key-release``) for the CC/DAT controls, which must not read
files themselves.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from gpufence._frozen import Frozen
from gpufence._yaml import LocatedDocument, load_yaml
from gpufence.attest.broker._url import is_database_url, postgres_conninfo
from gpufence.attest.policy import Policy, load_policy, policy_from_mapping
from gpufence.errors import InputError, redact_secrets
from gpufence.model.evidence import CollectorName, EvidenceDocument

__all__ = [
    "BrokerConfig",
    "KekConfig",
    "Limits",
    "LoadedBrokerConfig",
    "ResourceConfig",
    "ResourceRule",
    "key_release_evidence",
    "load_broker_config",
]

SUBJECT = "secrets/key-release"


class KekConfig(Frozen):
    """Where the key-encryption key that seals secrets at rest comes from."""

    source: str = Field(
        default="embedded",
        description="file | env | embedded (a built-in development key) | a registered provider.",
    )
    path: str | None = None
    env: str | None = None
    options: dict[str, str] = Field(default_factory=dict, description="Provider settings.")


class Listen(Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    tls_cert: str | None = Field(default=None, description="PEM certificate (chain) to serve TLS.")
    tls_key: str | None = None


class Revocation(Frozen):
    mode: Literal["offline", "ocsp"] = "offline"
    ocsp_url: str | None = None
    allow_hold: bool = False


class TrustAnchors(Frozen):
    """Replace the pinned NVIDIA roots (tests, private CAs); the audit reports it."""

    device_root: str | None = None
    rim_root: str | None = None
    amd_ark_milan: str | None = None
    """Replace the pinned AMD ARK for Milan SEV-SNP reports (test PKIs only)."""
    amd_ark_genoa: str | None = None
    intel_sgx_root: str | None = None
    """Replace the pinned Intel SGX Root CA for TDX quotes and collateral (test PKIs only)."""


class Limits(Frozen):
    """Bounds on what one client may send (issue 12: a 200 MB body was read whole)."""

    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body; 8 H100/H200 GPUs + 4 NVSwitches need about 140 KiB.",
    )
    max_devices: int = Field(default=16, ge=1, le=256, description="Evidence items per /attest.")
    rate_per_s: float = Field(
        default=20.0, gt=0, description="Requests per second per client address (token bucket)."
    )
    burst: int = Field(default=40, ge=1, description="Requests a client may send at once.")


class ResourceConfig(Frozen):
    """Who owns a stored secret and what evidence it takes to have it."""

    tenant: str = Field(min_length=1, description="The owner tenant (recorded in every decision).")
    policy: str | None = Field(
        default=None, description="A name under broker.policies; absent: the default broker.policy."
    )


class ResourceRule(Frozen):
    """A resource resolved against the loaded policies (``policy`` None: never released)."""

    resource: str
    tenant: str | None
    policy_name: str | None
    policy: Policy | None


DEFAULT_POLICY = "default"


class BrokerConfig(Frozen):
    """The broker configuration file: listen address, policy, RIMs, KEK, token and log."""

    audience: str = Field(min_length=1)
    issuer: str = "gpufence-broker"
    listen: Listen = Listen()
    nonce_ttl_s: int = Field(default=60, ge=1, le=3600)
    token_ttl_s: int = Field(default=300, ge=1, le=86400)
    database: str = Field(
        default="broker.db",
        description="SQLite file (relative to this file; one host) or postgresql://USER@HOST/DB "
        "(several hosts; password from PGPASSWORD or ~/.pgpass, never in this file). Holds the "
        "secrets, challenges, spent tokens and the decision log.",
    )
    audit_log: str | None = Field(
        default=None,
        description="Removed: the decision log lives in broker.database now (one transaction per "
        "decision). Only the database's own path is accepted here.",
    )
    signing_key: str | None = None
    token_alg: Literal["hs256", "es384"] = Field(
        default="hs256",
        description="hs256: release tokens MACed under a key derived from the KEK (only brokers "
        "verify them; no signing key needed across workers or hosts); es384: signed with "
        "signing_key (verifiable with its public key, about 0.7 ms more CPU per release).",
    )
    kek: KekConfig = KekConfig()
    revocation: Revocation = Revocation()
    rims: tuple[str, ...] = ()
    trust_anchors: TrustAnchors = TrustAnchors()
    limits: Limits = Limits()
    sqlite_synchronous: Literal["normal", "full"] = Field(
        default="full",
        description="full: fsync every commit (a power loss cannot roll back a spent token or "
        "challenge); normal: no fsync per commit in WAL mode (survives process crashes, a power "
        "loss can roll back the last commits). PostgreSQL: the server's synchronous_commit.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes on this host (they share the database).",
    )
    tdx_collateral: str | None = None
    """Folder with Intel PCS collateral files (tcb_info.json, qe_identity.json,
    tcb_signing_chain.pem); without it TDX collateral steps are not evaluated."""
    policy: str | dict[str, object] | None = None
    policies: dict[str, str | dict[str, object]] = Field(default_factory=dict)
    resources: dict[str, ResourceConfig] = Field(default_factory=dict)


class LoadedBrokerConfig(Frozen):
    """A broker configuration with its policy loaded and the directory paths resolve against."""

    config: BrokerConfig
    policy: Policy | None
    """The default policy (``broker.policy``), if any."""
    policies: dict[str, Policy] = Field(default_factory=dict)
    """Every named policy, the default one included as ``default``."""
    base_dir: str
    source: str

    def path(self, relative: str) -> Path:
        """``relative`` resolved against the configuration file's directory."""
        return (Path(self.base_dir) / relative).resolve()

    def database(self) -> Path | str:
        """``broker.database``: the SQLite file's resolved path, or the PostgreSQL URL."""
        target = self.config.database
        return target if is_database_url(target) else self.path(target)

    def database_shown(self) -> str:
        """``broker.database`` safe to print (any password redacted)."""
        return redact_secrets(str(self.database()))

    @property
    def resources_declared(self) -> bool:
        """Whether the configuration declares its resources (owner tenant and policy each)."""
        return bool(self.config.resources)

    def rule(self, resource: str) -> ResourceRule | None:
        """The owner and policy of ``resource``; None when resources are declared and it is not."""
        declared = self.config.resources.get(resource)
        if declared is None:
            if self.config.resources:
                return None
            return ResourceRule(
                resource=resource, tenant=None, policy_name=DEFAULT_POLICY, policy=self.policy
            )
        name = declared.policy or (DEFAULT_POLICY if self.policy is not None else None)
        return ResourceRule(
            resource=resource,
            tenant=declared.tenant,
            policy_name=name,
            policy=self.policies.get(name) if name else None,
        )

    def digest(self) -> str:
        """One hash over every policy and the resource map (health checks, start-up line)."""
        body = {
            "policies": {n: p.digest() for n, p in sorted(self.policies.items())},
            "resources": {
                r: c.model_dump(mode="json") for r, c in sorted(self.config.resources.items())
            },
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_broker_config(path: Path) -> LoadedBrokerConfig:
    """Read and validate the broker configuration and its policy (InputError with file:line)."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict) or "broker" not in doc.data:
        raise InputError(
            "a broker configuration has a top-level 'broker:' mapping", location=doc.locate(())
        )
    try:
        config = BrokerConfig.model_validate(doc.data["broker"])
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ("broker", *err["loc"])
        raise InputError(
            f"{'.'.join(map(str, loc))}: {err['msg']}", location=doc.locate(loc)
        ) from None
    base = path.resolve().parent
    _check_database(config, base, doc)

    def one(value: str | dict[str, object], where: tuple[str, ...]) -> Policy:
        if isinstance(value, str):
            return load_policy(base / value)
        return policy_from_mapping(value, doc, base, where)

    policy = None if config.policy is None else one(config.policy, ("broker", "policy"))
    policies = {name: one(v, ("broker", "policies", name)) for name, v in config.policies.items()}
    if DEFAULT_POLICY in policies:
        raise InputError(
            f"broker.policies: the name {DEFAULT_POLICY!r} is reserved for broker.policy",
            location=doc.locate(("broker", "policies", DEFAULT_POLICY)),
        )
    if policy is not None:
        policies[DEFAULT_POLICY] = policy
    if not policies:
        raise InputError(
            "a broker configuration needs broker.policy or broker.policies",
            location=doc.locate(("broker",)),
        )
    for resource, declared in config.resources.items():
        if declared.policy is not None and declared.policy not in policies:
            raise InputError(
                f"broker.resources.{resource}.policy: no policy named {declared.policy!r} "
                f"(known: {', '.join(sorted(policies))})",
                location=doc.locate(("broker", "resources", resource, "policy")),
            )
    return LoadedBrokerConfig(
        config=config,
        policy=policy,
        policies=policies,
        base_dir=str(base),
        source=str(path),
    )


def _check_database(config: BrokerConfig, base: Path, doc: LocatedDocument) -> None:
    if is_database_url(config.database):
        try:
            postgres_conninfo(config.database)
        except InputError as exc:
            raise InputError(exc.message, location=doc.locate(("broker", "database"))) from None
    legacy = config.audit_log
    if legacy is None or (
        not is_database_url(config.database)
        and (base / legacy).resolve() == (base / config.database).resolve()
    ):
        return
    raise InputError(
        "broker.audit_log: the decision log now lives in broker.database (its state change and "
        "its log entry commit in one transaction); remove broker.audit_log. An older separate "
        f"log stays verifiable: gpufence broker audit-log verify --config FILE {legacy}",
        location=doc.locate(("broker", "audit_log")),
    )


def key_release_evidence(
    loaded: LoadedBrokerConfig, *, now: datetime | None = None
) -> EvidenceDocument:
    """Facts about the broker for the audit (``key_release.*``), from its configuration."""
    config = loaded.config
    every = list(loaded.policies.values())
    first = loaded.policy or every[0]
    resources: dict[str, object] = {}
    for resource in sorted(config.resources):
        rule = loaded.rule(resource)
        assert rule is not None  # declared
        resources[resource] = {
            "tenant": rule.tenant,
            "policy": rule.policy_name,
            "policy_id": rule.policy.id if rule.policy else None,
            "policy_hash": rule.policy.digest() if rule.policy else None,
            "cvm_required": bool(rule.policy and rule.policy.cvm and rule.policy.cvm.required),
        }
    observed: dict[str, object] = {
        "key_release.broker_config": loaded.source,
        "key_release.policy_id": first.id,
        "key_release.policy_version": first.version,
        "key_release.policy_hash": first.digest(),
        "key_release.policy_ids": sorted({p.id for p in every}),
        # The policy engine has no allow rule: a result is allowed only when no rule refuses it.
        "key_release.policy_default_deny": True,
        "key_release.allows_devtools": any(p.allow_devtools for p in every),
        "key_release.revocation_required": config.revocation.mode == "ocsp"
        and not any(p.accepts_unchecked_revocation for p in every),
        "key_release.revocation_mode": config.revocation.mode,
        "key_release.accepts_not_evaluated": sorted(
            {w for p in every for w in p.accept_not_evaluated}
        ),
        # Per-resource policy (issue 12): which tenant owns what, and under which policy.
        "key_release.resources_declared": loaded.resources_declared,
        "key_release.resources": resources,
        "key_release.resources_without_policy": sorted(
            r for r, v in resources.items() if isinstance(v, dict) and v["policy_hash"] is None
        ),
        "key_release.rims_configured": len(config.rims),
        "key_release.token_ttl_s": config.token_ttl_s,
        "key_release.nonce_ttl_s": config.nonce_ttl_s,
        "key_release.kek_source": config.kek.source,
        "key_release.kek_embedded_default": config.kek.source == "embedded",
        "key_release.audience": config.audience,
        "key_release.signing_key_persistent": config.signing_key is not None,
        "key_release.required_devices": dict(first.devices) if first.devices else None,
        "key_release.custom_trust_anchors": any(config.trust_anchors.model_dump().values()),
    }
    return EvidenceDocument.new(
        subject=SUBJECT, collector=CollectorName.BROKER_CONFIG, observed=observed, collected_at=now
    )
