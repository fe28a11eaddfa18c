"""Attestation-gated key release: what the key broker's configuration allows (CC/DAT planes).

The facts come from the evidence document ``secrets/key-release`` that the audit builds from the
broker configuration named in the inventory (``gpufence.attest.broker.config``); these checks
never read files. No broker evidence means NOT_EVALUATED, never PASS.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import JsonValue

from gpufence.controls._common import not_applicable
from gpufence.controls.engine import Outcome, control
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import Plane, Severity, Status
from gpufence.model.snapshot import Snapshot

__all__ = [
    "broker_key_storage",
    "broker_policy_lax",
    "broker_resources_unscoped",
    "broker_revocation_unchecked",
    "broker_token_ttl",
]

RESOURCE = "secrets/key-release"
_POINTER = ("secrets", "key_release")
_DOCS = "https://docs.nvidia.com/attestation/index.html"
_RATS = "https://www.rfc-editor.org/rfc/rfc9334"
MAX_TOKEN_TTL_S = 900
MAX_NONCE_TTL_S = 300


def _broker(snap: Snapshot) -> tuple[EvidenceDocument, str] | Outcome:
    """The newest broker evidence, or the outcome that says why there is none to judge."""
    release = snap.inventory.secrets.key_release
    if release is None or release.mechanism != "attestation-broker":
        return not_applicable("no attestation-broker key release is declared")
    found = snap.evidence_for(RESOURCE)
    if not found:
        why = (
            "secrets.key_release.broker_config is not set"
            if release.broker_config is None
            else f"no broker evidence was loaded from {release.broker_config}"
        )
        return Outcome(
            Status.NOT_EVALUATED,
            RESOURCE,
            f"key broker configuration not observed: {why}",
            {"missing": "key_release.*"},
            _POINTER,
        )
    return found[-1]


def _facts(doc: EvidenceDocument, origin: str, *names: str) -> dict[str, JsonValue]:
    facts: dict[str, JsonValue] = {
        f"key_release.{n}": doc.observed.get(f"key_release.{n}") for n in names
    }
    facts["origin"] = origin
    return facts


@control(
    id="CC-005",
    title="Key broker policy releases keys to debug or devtools GPUs",
    plane=Plane.CC,
    severity=Severity.CRITICAL,
    failure_mode="A broker whose policy is not default-deny, or that accepts GPUs whose claims do "
    "not show debug disabled, hands model keys to devices whose memory a host can inspect.",
    remediation="Use a default-deny policy (gpufence's engine is) with allow_devtools: false "
    "and matching RIM measurements required.",
    references=(_DOCS, _RATS),
)
def broker_policy_lax(snap: Snapshot) -> Iterator[Outcome]:
    found = _broker(snap)
    if isinstance(found, Outcome):
        yield found
        return
    doc, origin = found
    evidence = _facts(
        doc, origin, "policy_id", "policy_hash", "policy_default_deny", "allows_devtools"
    )
    deny = doc.observed.get("key_release.policy_default_deny")
    devtools = doc.observed.get("key_release.allows_devtools")
    if deny is None or devtools is None:
        yield Outcome(
            Status.NOT_EVALUATED, RESOURCE, "broker evidence lacks policy facts", evidence, _POINTER
        )
    elif deny is not True or devtools is not False:
        problems = [
            p
            for p, bad in (
                ("not default-deny", deny is not True),
                ("allows devtools/debug GPUs", devtools is not False),
            )
            if bad
        ]
        yield Outcome(
            Status.FAIL, RESOURCE, "broker policy " + " and ".join(problems), evidence, _POINTER
        )
    else:
        yield Outcome(
            Status.PASS,
            RESOURCE,
            "broker policy is default-deny and refuses debug GPUs",
            evidence,
            _POINTER,
        )


@control(
    id="CC-007",
    title="Key broker secrets are not scoped to an owner tenant and a policy",
    plane=Plane.CC,
    severity=Severity.HIGH,
    failure_mode="When the broker does not map each stored secret to its owner tenant and the "
    "attestation policy it requires, any workload whose GPUs pass the one policy obtains every "
    "tenant's key (cross-tenant key release); a declared secret without a policy is never "
    "released, which is an outage waiting to be noticed.",
    remediation="Declare every secret under broker.resources with its tenant and a policy "
    "(pin the tenant's GPUs with allowed_ueids, and its measurements and versions).",
    references=(_RATS,),
)
def broker_resources_unscoped(snap: Snapshot) -> Iterator[Outcome]:
    found = _broker(snap)
    if isinstance(found, Outcome):
        yield found
        return
    doc, origin = found
    evidence = _facts(doc, origin, "resources_declared", "resources", "resources_without_policy")
    declared = doc.observed.get("key_release.resources_declared")
    orphans = doc.observed.get("key_release.resources_without_policy")
    if declared is None:
        yield Outcome(
            Status.NOT_EVALUATED,
            RESOURCE,
            "broker evidence lacks resource facts (older gpufence)",
            evidence,
            _POINTER,
        )
    elif declared is not True:
        yield Outcome(
            Status.FAIL,
            RESOURCE,
            "broker declares no resources: every stored secret goes to any requester that "
            "passes its single policy, whatever the tenant",
            evidence,
            _POINTER,
        )
    elif isinstance(orphans, list) and orphans:
        yield Outcome(
            Status.FAIL,
            RESOURCE,
            f"resources without a policy (never released): {', '.join(map(str, orphans))}",
            evidence,
            _POINTER,
        )
    else:
        resources = doc.observed.get("key_release.resources")
        count = len(resources) if isinstance(resources, dict) else 0
        yield Outcome(
            Status.PASS,
            RESOURCE,
            f"{count} resources, each with an owner tenant and a policy",
            evidence,
            _POINTER,
        )


@control(
    id="CC-006",
    title="Key broker accepts evidence whose revocation was never checked",
    plane=Plane.CC,
    severity=Severity.MEDIUM,
    failure_mode="Without OCSP a revoked GPU identity or RIM signer (a leaked device key) still "
    "attests successfully and receives keys.",
    remediation="Run the broker with revocation.mode: ocsp and keep 'revocation' out of "
    "accept_not_evaluated, or accept unchecked revocation explicitly and document why (air gap).",
    references=(_DOCS,),
)
def broker_revocation_unchecked(snap: Snapshot) -> Iterator[Outcome]:
    found = _broker(snap)
    if isinstance(found, Outcome):
        yield found
        return
    doc, origin = found
    evidence = _facts(
        doc, origin, "revocation_required", "revocation_mode", "accepts_not_evaluated"
    )
    required = doc.observed.get("key_release.revocation_required")
    if required is None:
        yield Outcome(
            Status.NOT_EVALUATED,
            RESOURCE,
            "broker evidence lacks revocation facts",
            evidence,
            _POINTER,
        )
    else:
        yield Outcome(
            Status.PASS if required is True else Status.FAIL,
            RESOURCE,
            "broker requires OCSP revocation checks"
            if required is True
            else "broker releases keys without a revocation check (mode "
            f"{doc.observed.get('key_release.revocation_mode')})",
            evidence,
            _POINTER,
        )


@control(
    id="DAT-004",
    title="Key broker tokens or challenges live too long",
    plane=Plane.DAT,
    severity=Severity.MEDIUM,
    failure_mode="A long-lived release token or challenge widens the window in which stolen "
    "tokens or relayed evidence still obtain the key.",
    remediation=f"Keep token_ttl_s <= {MAX_TOKEN_TTL_S} and nonce_ttl_s <= {MAX_NONCE_TTL_S}; "
    "tokens are single use.",
    references=(_RATS,),
)
def broker_token_ttl(snap: Snapshot) -> Iterator[Outcome]:
    found = _broker(snap)
    if isinstance(found, Outcome):
        yield found
        return
    doc, origin = found
    evidence = _facts(doc, origin, "token_ttl_s", "nonce_ttl_s")
    token_ttl = doc.observed.get("key_release.token_ttl_s")
    nonce_ttl = doc.observed.get("key_release.nonce_ttl_s")
    if not isinstance(token_ttl, int) or not isinstance(nonce_ttl, int):
        yield Outcome(
            Status.NOT_EVALUATED, RESOURCE, "broker evidence lacks TTL facts", evidence, _POINTER
        )
        return
    too_long = []
    if token_ttl > MAX_TOKEN_TTL_S:
        too_long.append(f"token_ttl_s {token_ttl} > {MAX_TOKEN_TTL_S}")
    if nonce_ttl > MAX_NONCE_TTL_S:
        too_long.append(f"nonce_ttl_s {nonce_ttl} > {MAX_NONCE_TTL_S}")
    yield Outcome(
        Status.FAIL if too_long else Status.PASS,
        RESOURCE,
        "; ".join(too_long) or f"tokens live {token_ttl} s, challenges {nonce_ttl} s",
        evidence,
        _POINTER,
    )


@control(
    id="DAT-005",
    title="Key broker seals secrets with the embedded development KEK",
    plane=Plane.DAT,
    severity=Severity.HIGH,
    failure_mode="The built-in key-encryption key is public (it ships in gpufence), so anyone "
    "with a copy of the broker database can open every stored model key.",
    remediation="Set kek.source to file or env with a 32-byte key kept outside the database, or "
    "a registered Vault/KMS provider.",
    references=(_RATS,),
)
def broker_key_storage(snap: Snapshot) -> Iterator[Outcome]:
    found = _broker(snap)
    if isinstance(found, Outcome):
        yield found
        return
    doc, origin = found
    evidence = _facts(doc, origin, "kek_source", "kek_embedded_default")
    embedded = doc.observed.get("key_release.kek_embedded_default")
    if embedded is None:
        yield Outcome(
            Status.NOT_EVALUATED, RESOURCE, "broker evidence lacks KEK facts", evidence, _POINTER
        )
    else:
        yield Outcome(
            Status.FAIL if embedded is True else Status.PASS,
            RESOURCE,
            "secrets at rest are sealed with the embedded development KEK"
            if embedded is True
            else f"secrets at rest are sealed with KEK source "
            f"{doc.observed.get('key_release.kek_source')}",
            evidence,
            _POINTER,
        )
