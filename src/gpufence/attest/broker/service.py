"""The key broker's decisions, without HTTP: challenge, attest, release.

Every refusal is a :class:`Refusal` with a stable reason code and an HTTP status; every decision
(issued, allowed, refused) is appended to the hash-chained audit log first.

Flow::

    POST /challenge             -> {nonce}                       (single use, nonce_ttl_s)
    client: gpu_nonce = SHA-256("gpufence-broker/v1" || nonce || its P-384 SPKI); GPU signs it
    POST /attest {nonce, public_key, evidence}
                                -> {token}  ES384, aud, exp, jti, policy hash, cnf.spki
    GET /resource/{id}  Authorization: Bearer <token>
                                -> {alg, ciphertext}  HPKE to cnf.spki; token single use
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from pydantic import JsonValue

from gpufence.attest.broker.audit_log import AuditLogError, audit_key
from gpufence.attest.broker.config import LoadedBrokerConfig
from gpufence.attest.broker.crypto import (
    HPKE_ALG,
    TokenError,
    TokenMac,
    TokenSigner,
    b64e,
    binding_nonce,
    hpke_seal,
    load_kek,
    load_public_key,
    spki_der,
)
from gpufence.attest.broker.database import (
    AuditEntry,
    BrokerDatabase,
    ConsumeResult,
    open_broker_database,
)
from gpufence.attest.cvm.appraise import CvmPolicy, appraise_cvm
from gpufence.attest.cvm.binding import expected_report_data, gpu_evidence_digest
from gpufence.attest.cvm.snp_report import TcbVersion
from gpufence.attest.cvm.tdx_collateral import TdxCollateral, load_collateral
from gpufence.attest.device_reports import evidence_from_json
from gpufence.attest.ocsp import OcspChecker, httpx_fetch
from gpufence.attest.policy import CvmRequirement, Decision, Policy, Reason, evaluate
from gpufence.attest.rim import RimCheck, RimError, check_rim
from gpufence.attest.verify import SetResult, VerifyOptions, verify_set
from gpufence.errors import InputError

__all__ = ["BrokerService", "Refusal"]

# reason code -> HTTP status
REASONS: dict[str, int] = {
    "BAD_REQUEST": 400,
    "NONCE_UNKNOWN": 403,
    "NONCE_EXPIRED": 403,
    "NONCE_REPLAYED": 409,
    "EVIDENCE_UNREADABLE": 400,
    "NONCE_MISMATCH": 403,
    "EVIDENCE_REJECTED": 403,
    "POLICY_DENIED": 403,
    "TOKEN_MISSING": 401,
    "TOKEN_INVALID": 401,
    "TOKEN_EXPIRED": 401,
    "TOKEN_AUDIENCE": 401,
    "TOKEN_REPLAYED": 409,
    "RESOURCE_UNKNOWN": 404,
    "RESOURCE_NOT_GRANTED": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
}


NONCE_CODES: dict[ConsumeResult, str] = {
    "ok": "BAD_REQUEST",  # never used: only a state other than ok is refused
    "unknown": "NONCE_UNKNOWN",
    "expired": "NONCE_EXPIRED",
    "replayed": "NONCE_REPLAYED",
}


class Refusal(Exception):
    """A request the broker refuses: a code for the client and the audit log, and the detail."""

    def __init__(
        self, code: str, detail: str, extra: Mapping[str, JsonValue] | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = REASONS[code]
        self.extra = dict(extra or {})


def _anchor(loaded: LoadedBrokerConfig, name: str | None) -> x509.Certificate | None:
    if name is None:
        return None
    path = loaded.path(name)
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot load trust anchor: {exc}") from None


_PURGE_EVERY_S = 60.0
"""How often a broker process drops challenges that expired over an hour ago."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cvm_report_data(nonce: bytes, spki: bytes, gpu_reports: Sequence[bytes]) -> bytes:
    """What a CVM report's 64-byte report data must hold to bind this attest request.

    :func:`gpufence.attest.cvm.binding.expected_report_data` of the broker nonce, the
    requester's SPKI and the digest of the GPU reports in order (formula in
    docs/attestation.md): a GPU report replayed from another CVM (or request) does not match.
    """
    return expected_report_data(nonce, spki, gpu_evidence_digest(gpu_reports))


def cvm_policy(requirement: CvmRequirement, accept_not_evaluated: Collection[str]) -> CvmPolicy:
    """The broker policy's CVM requirement as the CVM verifier's :class:`CvmPolicy`.

    Waivers: the policy's ``accept_not_evaluated`` patterns that start with ``cvm.`` (so a GPU
    pattern such as ``revocation`` never waives a CVM step).
    """
    rtmrs = {i: frozenset(bytes.fromhex(v) for v in vs) for i, vs in requirement.tdx_rtmrs.items()}
    min_tcb = None
    if requirement.snp_min_tcb is not None:
        bl, tee, snp, ucode = requirement.snp_min_tcb
        min_tcb = TcbVersion.from_u64(
            int.from_bytes(bytes([bl, tee, 0, 0, 0, 0, snp, ucode]), "little")
        )
    return CvmPolicy(
        kinds=tuple(requirement.kinds),
        snp_measurements=frozenset(bytes.fromhex(m) for m in requirement.snp_measurements) or None,
        snp_min_tcb=min_tcb,
        tdx_mrtds=frozenset(bytes.fromhex(m) for m in requirement.tdx_mrtds) or None,
        tdx_rtmrs=rtmrs,
        allow_debug=requirement.allow_debug,
        allow_migration_agent=requirement.allow_migration_agent,
        waivers=tuple(p.removeprefix("cvm.") for p in accept_not_evaluated if p.startswith("cvm.")),
    )


@dataclass(frozen=True)
class CvmContext:
    """The CVM half of one /attest request, as :meth:`BrokerService._check_cvm` sees it."""

    evidence: Mapping[str, JsonValue] | None
    """The request's optional ``cvm`` object (format defined by the CVM verifier)."""
    report_data: bytes
    """:func:`cvm_report_data` for this request: the CVM report must carry exactly this."""
    at: datetime
    """The request's time: certificates and collateral must be valid then."""


@dataclass(frozen=True)
class CvmCheck:
    """The CVM outcome for one policy: a refusal reason (None: satisfied or not required),
    the CVM steps waived by the policy (``cvm:<step>``) and a summary for the audit log."""

    reason: Reason | None
    waived: tuple[str, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BrokerService:
    """The broker's logic: challenges, attestation appraisal, token issue and secret release."""

    loaded: LoadedBrokerConfig
    signer: TokenSigner | TokenMac
    """Signs and checks release tokens (HS256 under a KEK-derived key by default)."""
    db: BrokerDatabase
    """Secrets, challenges, spent tokens and the decision log: one database, one transaction
    per decision."""
    clock: Callable[[], float] = time.time
    rim_sources: Sequence[tuple[str, bytes]] = ()
    device_root: x509.Certificate | None = None
    rim_root: x509.Certificate | None = None
    amd_arks: Mapping[str, x509.Certificate] = field(default_factory=dict)
    """Product -> ARK replacing the pinned AMD root (test PKIs); empty: the pinned ones."""
    intel_root: x509.Certificate | None = None
    tdx_collateral: TdxCollateral | None = None
    _rim_cache: dict[int, list[RimCheck]] = field(default_factory=dict)
    _next_purge: float = 0.0

    @classmethod
    def from_config(
        cls, loaded: LoadedBrokerConfig, clock: Callable[[], float] = time.time
    ) -> BrokerService:
        """A service over a loaded configuration (opens the store and the audit log)."""
        config = loaded.config
        kek = load_kek(
            config.kek.source,
            path=loaded.path(config.kek.path) if config.kek.path else None,
            env=config.kek.env,
            options=config.kek.options,
        )
        rims = []
        for name in config.rims:
            path = loaded.path(name)
            try:
                rims.append((name, path.read_bytes()))
            except OSError as exc:
                raise InputError(f"{path}: cannot read RIM: {exc.strerror}") from None
        anchors = config.trust_anchors
        target = loaded.database()
        try:
            db = open_broker_database(
                target, kek, audit_key(kek), synchronous=config.sqlite_synchronous
            )
        except AuditLogError as exc:
            raise InputError(f"{loaded.database_shown()}: {exc}") from None
        arks = {
            product: cert
            for product, name in (
                ("Milan", anchors.amd_ark_milan),
                ("Genoa", anchors.amd_ark_genoa),
            )
            if (cert := _anchor(loaded, name)) is not None
        }
        collateral = (
            load_collateral(loaded.path(config.tdx_collateral)) if config.tdx_collateral else None
        )
        return cls(
            device_root=_anchor(loaded, anchors.device_root),
            rim_root=_anchor(loaded, anchors.rim_root),
            amd_arks=arks,
            intel_root=_anchor(loaded, anchors.intel_sgx_root),
            tdx_collateral=collateral,
            loaded=loaded,
            signer=TokenMac.from_kek(kek)
            if config.token_alg == "hs256"  # noqa: S105 - an algorithm name, not a secret
            else TokenSigner.load(loaded.path(config.signing_key) if config.signing_key else None),
            db=db,
            clock=clock,
            rim_sources=tuple(rims),
        )

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- helpers ------------------------------------------------------------------------

    def _refusal(self, event: str, code: str, detail: str, **record: Any) -> AuditEntry:
        return AuditEntry(
            event, "refused", self.clock(), reason=code, detail={"detail": detail, **record}
        )

    def _nonce_refusal(self, state: ConsumeResult, record: Mapping[str, Any]) -> AuditEntry:
        return self._refusal("attest", NONCE_CODES[state], f"challenge nonce is {state}", **record)

    def _refuse_attest(
        self, nonce: bytes, now: float, code: str, detail: str, **record: Any
    ) -> Refusal:
        """Consume the challenge and log this refusal in one transaction.

        When the challenge cannot be consumed (unknown, expired, used by a concurrent request)
        that is the refusal logged and raised instead.
        """
        state = self.db.consume_challenge(
            nonce,
            now,
            lambda st: (
                self._refusal("attest", code, detail, **record)
                if st == "ok"
                else self._nonce_refusal(st, record)
            ),
        )
        if state != "ok":
            return Refusal(NONCE_CODES[state], f"challenge nonce is {state}")
        return Refusal(code, detail)

    def _refuse(self, event: str, code: str, detail: str, **record: Any) -> Refusal:
        """Log a refusal that changes no state, and the exception to raise."""
        self.db.append(self._refusal(event, code, detail, **record))
        return Refusal(code, detail)

    def _rims(self, now: float) -> list[RimCheck]:
        # RIM chains are re-checked hourly so a long-lived broker notices an expiring signer.
        bucket = int(now // 3600)
        if bucket not in self._rim_cache:
            at = datetime.fromtimestamp(now, UTC)
            checks = []
            for name, data in self.rim_sources:
                try:
                    checks.append(check_rim(data, at, source=name, root_ca=self.rim_root))
                except RimError:
                    continue  # reported at startup by `broker serve`; a bad file is no reference
            self._rim_cache = {bucket: checks}
        return self._rim_cache[bucket]

    # -- endpoints ----------------------------------------------------------------------

    def challenge(self) -> dict[str, JsonValue]:
        """Issue a fresh nonce for one attestation."""
        now = self.clock()
        nonce = secrets.token_bytes(32)
        expires = now + self.loaded.config.nonce_ttl_s
        self.db.issue_challenge(
            nonce,
            expires,
            AuditEntry("challenge", "issued", now, detail={"nonce_sha256": _sha(nonce)}),
        )
        if now >= self._next_purge:
            # Challenges are free to ask for: without this the table grew with every one ever
            # issued. A purged nonce is refused as unknown instead of expired.
            self.db.purge(now)
            self._next_purge = now + _PURGE_EVERY_S
        return {
            "nonce": b64e(nonce),
            "expires_at": int(expires),
            "binding": "sha256(gpufence-broker/v1||nonce||spki)",
        }

    def _check_cvm(self, policy: Policy, cvm: CvmContext) -> CvmCheck:
        """The CPU half of a composite attestation (AMD SEV-SNP / Intel TDX), for one policy.

        The one place where CVM evidence is judged. ``cvm.evidence`` is the optional ``cvm``
        object of the /attest request; ``cvm.report_data`` is what its report data must bind
        (broker nonce, requester key, GPU evidence digest). A policy without the requirement
        ignores it; with it, anything but a verified, bound, complete CVM report is refused
        (:func:`gpufence.attest.cvm.appraise.appraise_cvm`; a not-evaluated CVM step is
        accepted only when ``accept_not_evaluated`` names ``cvm.<step>``).
        """
        requirement = policy.cvm
        if requirement is None or not requirement.required:
            return CvmCheck(None)
        decision = appraise_cvm(
            cvm.evidence,
            cvm_policy(requirement, policy.accept_not_evaluated),
            cvm.report_data,
            cvm.at,
            ark_override=self.amd_arks,
            tdx_root_override=self.intel_root,
            tdx_collateral=self.tdx_collateral,
        )
        result = decision.result
        summary: dict[str, Any] = {}
        if result is not None:
            summary = {
                "kind": result.kind,
                "verdict": result.verdict,
                "measurement": result.facts.get("measurement") or result.facts.get("mrtd"),
                "report_data_sha256": _sha(result.report_data or b""),
            }
        if decision.code is None:
            waived = tuple(f"cvm:{name}" for name in sorted(result.waived)) if result else ()
            return CvmCheck(None, waived, summary)
        reason = Reason(code=decision.code, detail=f"policy {policy.id}: {decision.detail}")
        return CvmCheck(reason, (), summary)

    def attest(
        self,
        nonce_b64: str,
        public_key: str,
        evidence: Any,
        *,
        resources: Sequence[str] | None = None,
        tenant: str | None = None,
        cvm: Mapping[str, JsonValue] | None = None,
    ) -> dict[str, JsonValue]:
        """Appraise evidence for a nonce we issued; a token bound to ``public_key`` if it passes."""
        now = self.clock()
        try:
            nonce = base64.urlsafe_b64decode(nonce_b64 + "=" * (-len(nonce_b64) % 4))
            key = load_public_key(public_key.encode())
        except (ValueError, binascii.Error) as exc:
            raise self._refuse(
                "attest", "BAD_REQUEST", f"nonce or public_key unreadable: {exc}"
            ) from None
        record: dict[str, Any] = {"nonce_sha256": _sha(nonce)}
        if tenant is not None:
            record["tenant"] = tenant
        # A read first, so a stale or unknown nonce costs no verification; the challenge is
        # consumed (and the decision logged) in one transaction once the outcome is known.
        early = self.db.challenge_state(nonce, now)
        if early != "ok":
            raise self._refuse_attest(
                nonce, now, NONCE_CODES[early], f"challenge nonce is {early}", **record
            )
        try:
            devices = evidence_from_json(evidence, "evidence")
        except InputError as exc:
            raise self._refuse_attest(
                nonce, now, "EVIDENCE_UNREADABLE", exc.message, **record
            ) from None
        record["evidence_sha256"] = [_sha(d.report) for d in devices]
        spki = spki_der(key)
        expected = binding_nonce(nonce, spki)
        config = self.loaded.config
        revocation = None
        if config.revocation.mode == "ocsp":
            revocation = OcspChecker(
                httpx_fetch(),
                url=config.revocation.ocsp_url,
                allow_hold=config.revocation.allow_hold,
            )
        options = VerifyOptions(
            at=datetime.fromtimestamp(now, UTC),
            expected_nonce=expected,
            revocation=revocation,
            device_root=self.device_root,
        )
        result = verify_set(devices, options, self._rims(now))
        record["ueids"] = [d.ueid for d in result.devices]
        failed = [f"{who}:{s.name}" for who, s in result.all_steps() if s.status == "fail"]
        if any(name.endswith(":nonce") for name in failed):
            raise self._refuse_attest(
                nonce,
                now,
                "NONCE_MISMATCH",
                "evidence was not made for this challenge and key",
                failed_steps=failed,
                **record,
            )
        if failed:
            raise self._refuse_attest(
                nonce,
                now,
                "EVIDENCE_REJECTED",
                "verification failed: " + ", ".join(failed),
                failed_steps=failed,
                **record,
            )
        context = CvmContext(
            evidence=cvm,
            report_data=cvm_report_data(nonce, spki, [d.report for d in devices]),
            at=datetime.fromtimestamp(now, UTC),
        )
        granted, denied, waived = self._grant(result, context, resources, tenant)
        record["denied"] = denied
        if not granted:
            reasons = [f"{r}: {why}" for r, whys in denied.items() for why in whys]
            raise self._refuse_attest(
                nonce,
                now,
                "POLICY_DENIED",
                "; ".join(reasons) or "no resource to grant",
                reasons=reasons,
                **record,
            )
        jti = secrets.token_hex(16)
        claims: dict[str, Any] = {
            "iss": config.issuer,
            "aud": config.audience,
            "sub": ",".join(str(u) for u in record["ueids"]),
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + config.token_ttl_s,
            "jti": jti,
            # resource id -> SHA-256 of the policy that granted it: nothing else is released.
            "resources": {r: g["policy_sha256"] for r, g in granted.items()},
            "cnf": {"spki": b64e(spki)},
        }
        token = self.signer.sign(claims)
        allowed = AuditEntry(
            "attest",
            "allowed",
            now,
            detail={
                **record,
                "granted": granted,
                "waived": waived,
                "jti_sha256": _sha(jti.encode()),
            },
        )
        # Another request may have consumed the nonce while this one was verified.
        state = self.db.consume_challenge(
            nonce, now, lambda st: allowed if st == "ok" else self._nonce_refusal(st, record)
        )
        if state != "ok":
            raise Refusal(NONCE_CODES[state], f"challenge nonce is {state}")
        return {
            "token": token,
            "expires_at": claims["exp"],
            "resources": sorted(granted),
            "denied": {r: list(w) for r, w in denied.items()},
            "waived": list(waived),
        }

    def _grant(
        self,
        result: SetResult,
        cvm: CvmContext,
        wanted: Sequence[str] | None,
        tenant: str | None,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]], list[str]]:
        """Judge the verified evidence against the policy of each candidate resource.

        Candidates: the requested resources, else every declared one (every stored secret in
        the older single-policy form), narrowed to ``tenant`` when given. Each policy is
        evaluated once. Returns (granted: id -> tenant/policy, denied: id -> reasons, waivers).
        """
        if wanted is None:
            declared = self.loaded.config.resources
            candidates = sorted(declared) if declared else self.db.secret_ids()
        else:
            candidates = sorted(set(wanted))
        decisions: dict[str, tuple[Decision, CvmCheck]] = {}
        granted: dict[str, dict[str, Any]] = {}
        denied: dict[str, list[str]] = {}
        waived: set[str] = set()
        for resource in candidates:
            rule = self.loaded.rule(resource)
            if rule is None:
                denied[resource] = ["RESOURCE_UNKNOWN: not a resource of this broker"]
                continue
            if tenant is not None and rule.tenant != tenant:
                denied[resource] = [f"TENANT_MISMATCH: owned by another tenant than {tenant}"]
                continue
            if rule.policy is None:
                denied[resource] = ["RESOURCE_NO_POLICY: no policy governs this resource"]
                continue
            digest = rule.policy.digest()
            if digest not in decisions:
                decisions[digest] = (
                    evaluate(rule.policy, result),
                    self._check_cvm(rule.policy, cvm),
                )
            decision, cvm_check = decisions[digest]
            reasons = [f"{r.code}: {r.detail}" for r in decision.reasons]
            if cvm_check.reason is not None:
                reasons.append(f"{cvm_check.reason.code}: {cvm_check.reason.detail}")
            if reasons:
                denied[resource] = reasons
                continue
            granted[resource] = {
                "tenant": rule.tenant,
                "policy": {"id": rule.policy.id, "version": rule.policy.version},
                "policy_sha256": digest,
            }
            if cvm_check.summary:
                granted[resource]["cvm"] = dict(cvm_check.summary)
            waived.update(decision.waived)
            waived.update(cvm_check.waived)
        return granted, denied, sorted(waived)

    def release(self, authorization: str | None, resource_id: str) -> dict[str, JsonValue]:
        """Release a secret, sealed to the token's key, when the token allows ``resource_id``."""
        now = self.clock()
        record: dict[str, Any] = {"resource": resource_id}
        if not authorization or not authorization.startswith("Bearer "):
            raise self._refuse("release", "TOKEN_MISSING", "no bearer token", **record)
        config = self.loaded.config
        try:
            claims = self.signer.verify(
                authorization.removeprefix("Bearer ").strip(),
                audience=config.audience,
                issuer=config.issuer,
                now=now,
            )
        except TokenError as exc:
            raise self._refuse("release", exc.code, str(exc), **record) from None
        jti = str(claims.get("jti", ""))
        record["jti_sha256"] = _sha(jti.encode())
        scope = claims.get("resources")
        if not isinstance(scope, dict) or resource_id not in scope:
            raise self._refuse(
                "release",
                "RESOURCE_NOT_GRANTED",
                f"this token was not issued for {resource_id!r}",
                **record,
            )
        rule = self.loaded.rule(resource_id)
        if rule is None or rule.policy is None or scope[resource_id] != rule.policy.digest():
            raise self._refuse(
                "release",
                "TOKEN_INVALID",
                "the resource's policy changed since the token was issued",
                **record,
            )
        record["tenant"] = rule.tenant
        try:
            recipient = load_public_key(base64.urlsafe_b64decode(claims["cnf"]["spki"] + "=="))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise self._refuse(
                "release", "TOKEN_INVALID", "token has no usable cnf.spki", **record
            ) from None
        secret = self.db.get_secret(resource_id)
        if secret is None:
            raise self._refuse(
                "release", "RESOURCE_UNKNOWN", f"no resource {resource_id!r}", **record
            )
        info = f"gpufence-broker/v1|{resource_id}|{jti}".encode()
        sealed = hpke_seal(secret, recipient, info)
        replayed = "this token was already used"
        # The spend and its log entry commit together: never one without the other.
        if not self.db.spend_token(
            jti,
            now,
            lambda first: (
                AuditEntry("release", "allowed", now, detail=record)
                if first
                else self._refusal("release", "TOKEN_REPLAYED", replayed, **record)
            ),
        ):
            raise Refusal("TOKEN_REPLAYED", replayed)
        return {
            "resource": resource_id,
            "alg": HPKE_ALG,
            "info": info.decode(),
            "ciphertext": b64e(sealed),
        }
