"""The key broker's configuration file, and what the audit learns from it.

```yaml
broker:
  audience: gpufence-broker/prod      # tokens carry it; a token for another audience is refused
  listen: {host: 127.0.0.1, port: 8443}  # + tls_cert/tls_key; required off loopback
  nonce_ttl_s: 60                     # challenge lifetime (single use)
  token_ttl_s: 300                    # release-token lifetime (single use)
  database: broker.db                 # SQLite: sealed secrets, nonces, used tokens
  audit_log: audit.db                 # SQLite hash-chained decision log
  signing_key: signing-key.pem        # EC P-384 PEM for ES384 tokens (absent: per-process key)
  kek: {source: file, path: kek.bin}  # file | env (name) | embedded (development only) | <plugin>
  revocation: {mode: offline}         # offline | ocsp (online, with a nonce)
  rims: [NV_GPU_DRIVER_GH100_550.90.07.xml, ...]
  policy: policy.yaml                 # or the policy mapping inline
```

Paths are relative to the configuration file. :func:`key_release_evidence` turns the file into
an evidence document (subject ``secrets/key-release``) for the CC/DAT controls, which must not read
files themselves.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from gpufence._frozen import Frozen
from gpufence._yaml import load_yaml
from gpufence.attest.policy import Policy, load_policy, policy_from_mapping
from gpufence.errors import InputError
from gpufence.model.evidence import CollectorName, EvidenceDocument

__all__ = [
    "BrokerConfig",
    "KekConfig",
    "LoadedBrokerConfig",
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


class BrokerConfig(Frozen):
    """The broker configuration file: listen address, policy, RIMs, KEK, token and log."""

    audience: str = Field(min_length=1)
    issuer: str = "gpufence-broker"
    listen: Listen = Listen()
    nonce_ttl_s: int = Field(default=60, ge=1, le=3600)
    token_ttl_s: int = Field(default=300, ge=1, le=86400)
    database: str = "broker.db"
    audit_log: str = "audit.db"
    signing_key: str | None = None
    kek: KekConfig = KekConfig()
    revocation: Revocation = Revocation()
    rims: tuple[str, ...] = ()
    trust_anchors: TrustAnchors = TrustAnchors()
    policy: str | dict[str, object]


class LoadedBrokerConfig(Frozen):
    """A broker configuration with its policy loaded and the directory paths resolve against."""

    config: BrokerConfig
    policy: Policy
    base_dir: str
    source: str

    def path(self, relative: str) -> Path:
        """``relative`` resolved against the configuration file's directory."""
        return (Path(self.base_dir) / relative).resolve()


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
    if isinstance(config.policy, str):
        policy = load_policy(base / config.policy)
    else:
        policy = policy_from_mapping(config.policy, doc, base, ("broker", "policy"))
    return LoadedBrokerConfig(config=config, policy=policy, base_dir=str(base), source=str(path))


def key_release_evidence(
    loaded: LoadedBrokerConfig, *, now: datetime | None = None
) -> EvidenceDocument:
    """Facts about the broker for the audit (``key_release.*``), from its configuration."""
    config, policy = loaded.config, loaded.policy
    observed: dict[str, object] = {
        "key_release.broker_config": loaded.source,
        "key_release.policy_id": policy.id,
        "key_release.policy_version": policy.version,
        "key_release.policy_hash": policy.digest(),
        # The policy engine has no allow rule: a result is allowed only when no rule refuses it.
        "key_release.policy_default_deny": True,
        "key_release.allows_devtools": policy.allow_devtools,
        "key_release.revocation_required": config.revocation.mode == "ocsp"
        and not policy.accepts_unchecked_revocation,
        "key_release.revocation_mode": config.revocation.mode,
        "key_release.accepts_not_evaluated": list(policy.accept_not_evaluated),
        "key_release.rims_configured": len(config.rims),
        "key_release.token_ttl_s": config.token_ttl_s,
        "key_release.nonce_ttl_s": config.nonce_ttl_s,
        "key_release.kek_source": config.kek.source,
        "key_release.kek_embedded_default": config.kek.source == "embedded",
        "key_release.audience": config.audience,
        "key_release.signing_key_persistent": config.signing_key is not None,
        "key_release.required_devices": dict(policy.devices) if policy.devices else None,
        "key_release.custom_trust_anchors": bool(
            config.trust_anchors.device_root or config.trust_anchors.rim_root
        ),
    }
    return EvidenceDocument.new(
        subject=SUBJECT, collector=CollectorName.BROKER_CONFIG, observed=observed, collected_at=now
    )
