"""Attestation-gated key release: what the key broker's configuration allows (CC/DAT planes).

The facts come from the evidence document ``secrets/key-release`` that the audit builds from the
broker configuration named in the inventory (``gpufence.attest.broker.config``); these checks
never read files. No broker evidence means NOT_EVALUATED, never PASS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

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


Judge = Callable[[Mapping[str, JsonValue]], tuple[Status, str] | None]
"""Broker facts by short name (None: not observed) -> status and message, or None: undecided."""


def _judged(
    snap: Snapshot, names: tuple[str, ...], lacking: str, judge: Judge
) -> Iterator[Outcome]:
    """What every broker control does: find the broker evidence, show the ``key_release.*`` facts
    ``names`` with their origin, and judge them; NOT_EVALUATED ('broker evidence lacks
    ``lacking``') when the judge cannot decide."""
    found = _broker(snap)
    if isinstance(found, Outcome):
        yield found
        return
    doc, origin = found
    facts = {name: doc.observed.get(f"key_release.{name}") for name in names}
    evidence: dict[str, JsonValue] = {f"key_release.{n}": v for n, v in facts.items()}
    evidence["origin"] = origin
    verdict = judge(facts)
    if verdict is None:
        yield Outcome(
            Status.NOT_EVALUATED, RESOURCE, f"broker evidence lacks {lacking}", evidence, _POINTER
        )
        return
    status, message = verdict
    yield Outcome(status, RESOURCE, message, evidence, _POINTER)


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
    def judge(f: Mapping[str, JsonValue]) -> tuple[Status, str] | None:
        deny, devtools = f["policy_default_deny"], f["allows_devtools"]
        if deny is None or devtools is None:
            return None
        problems = [
            p
            for p, bad in (
                ("not default-deny", deny is not True),
                ("allows devtools/debug GPUs", devtools is not False),
            )
            if bad
        ]
        if problems:
            return Status.FAIL, "broker policy " + " and ".join(problems)
        return Status.PASS, "broker policy is default-deny and refuses debug GPUs"

    names = ("policy_id", "policy_hash", "policy_default_deny", "allows_devtools")
    yield from _judged(snap, names, "policy facts", judge)


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
    def judge(f: Mapping[str, JsonValue]) -> tuple[Status, str] | None:
        declared, orphans = f["resources_declared"], f["resources_without_policy"]
        if declared is None:
            return None
        if declared is not True:
            return (
                Status.FAIL,
                "broker declares no resources: every stored secret goes to any requester that "
                "passes its single policy, whatever the tenant",
            )
        if isinstance(orphans, list) and orphans:
            listed = ", ".join(map(str, orphans))
            return Status.FAIL, f"resources without a policy (never released): {listed}"
        resources = f["resources"]
        count = len(resources) if isinstance(resources, dict) else 0
        return Status.PASS, f"{count} resources, each with an owner tenant and a policy"

    names = ("resources_declared", "resources", "resources_without_policy")
    yield from _judged(snap, names, "resource facts (older gpufence)", judge)


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
    def judge(f: Mapping[str, JsonValue]) -> tuple[Status, str] | None:
        required = f["revocation_required"]
        if required is None:
            return None
        if required is True:
            return Status.PASS, "broker requires OCSP revocation checks"
        return (
            Status.FAIL,
            f"broker releases keys without a revocation check (mode {f['revocation_mode']})",
        )

    names = ("revocation_required", "revocation_mode", "accepts_not_evaluated")
    yield from _judged(snap, names, "revocation facts", judge)


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
    def judge(f: Mapping[str, JsonValue]) -> tuple[Status, str] | None:
        token_ttl, nonce_ttl = f["token_ttl_s"], f["nonce_ttl_s"]
        if not isinstance(token_ttl, int) or not isinstance(nonce_ttl, int):
            return None
        too_long = []
        if token_ttl > MAX_TOKEN_TTL_S:
            too_long.append(f"token_ttl_s {token_ttl} > {MAX_TOKEN_TTL_S}")
        if nonce_ttl > MAX_NONCE_TTL_S:
            too_long.append(f"nonce_ttl_s {nonce_ttl} > {MAX_NONCE_TTL_S}")
        if too_long:
            return Status.FAIL, "; ".join(too_long)
        return Status.PASS, f"tokens live {token_ttl} s, challenges {nonce_ttl} s"

    yield from _judged(snap, ("token_ttl_s", "nonce_ttl_s"), "TTL facts", judge)


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
    def judge(f: Mapping[str, JsonValue]) -> tuple[Status, str] | None:
        embedded = f["kek_embedded_default"]
        if embedded is None:
            return None
        if embedded is True:
            return Status.FAIL, "secrets at rest are sealed with the embedded development KEK"
        return Status.PASS, f"secrets at rest are sealed with KEK source {f['kek_source']}"

    yield from _judged(snap, ("kek_source", "kek_embedded_default"), "KEK facts", judge)
