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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from pydantic import JsonValue

from gpufence.attest.broker.audit_log import AuditLog
from gpufence.attest.broker.config import LoadedBrokerConfig
from gpufence.attest.broker.crypto import (
    HPKE_ALG,
    TokenError,
    TokenSigner,
    b64e,
    binding_nonce,
    hpke_seal,
    load_kek,
    load_public_key,
    spki_der,
)
from gpufence.attest.broker.store import BrokerStore
from gpufence.attest.device_reports import evidence_from_json
from gpufence.attest.ocsp import OcspChecker, httpx_fetch
from gpufence.attest.policy import evaluate
from gpufence.attest.rim import RimCheck, RimError, check_rim
from gpufence.attest.verify import VerifyOptions, verify_set
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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class BrokerService:
    """The broker's logic: challenges, attestation appraisal, token issue and secret release."""

    loaded: LoadedBrokerConfig
    signer: TokenSigner
    store: BrokerStore
    audit: AuditLog
    clock: Callable[[], float] = time.time
    rim_sources: Sequence[tuple[str, bytes]] = ()
    device_root: x509.Certificate | None = None
    rim_root: x509.Certificate | None = None
    _rim_cache: dict[int, list[RimCheck]] = field(default_factory=dict)

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
        return cls(
            device_root=_anchor(loaded, anchors.device_root),
            rim_root=_anchor(loaded, anchors.rim_root),
            loaded=loaded,
            signer=TokenSigner.load(
                loaded.path(config.signing_key) if config.signing_key else None
            ),
            store=BrokerStore(loaded.path(config.database), kek),
            audit=AuditLog(loaded.path(config.audit_log)),
            clock=clock,
            rim_sources=tuple(rims),
        )

    def close(self) -> None:
        """Close the store and the audit log."""
        self.store.close()
        self.audit.close()

    # -- helpers ------------------------------------------------------------------------

    def _refuse(self, event: str, code: str, detail: str, **record: Any) -> Refusal:
        self.audit.append(
            event, "refused", ts=self.clock(), reason=code, detail={"detail": detail, **record}
        )
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
        self.store.add_challenge(nonce, expires)
        self.audit.append("challenge", "issued", ts=now, detail={"nonce_sha256": _sha(nonce)})
        return {
            "nonce": b64e(nonce),
            "expires_at": int(expires),
            "binding": "sha256(gpufence-broker/v1||nonce||spki)",
        }

    def attest(self, nonce_b64: str, public_key: str, evidence: Any) -> dict[str, JsonValue]:
        """Appraise evidence for a nonce we issued; a token bound to ``public_key`` if it passes."""
        now = self.clock()
        try:
            nonce = base64.urlsafe_b64decode(nonce_b64 + "=" * (-len(nonce_b64) % 4))
            key = load_public_key(public_key.encode())
        except (ValueError, binascii.Error) as exc:
            raise self._refuse(
                "attest", "BAD_REQUEST", f"nonce or public_key unreadable: {exc}"
            ) from None
        state, _ = self.store.consume_challenge(nonce, now)
        record: dict[str, Any] = {"nonce_sha256": _sha(nonce)}
        if state != "ok":
            code = {
                "unknown": "NONCE_UNKNOWN",
                "expired": "NONCE_EXPIRED",
                "replayed": "NONCE_REPLAYED",
            }[state]
            raise self._refuse("attest", code, f"challenge nonce is {state}", **record)
        try:
            devices = evidence_from_json(evidence, "evidence")
        except InputError as exc:
            raise self._refuse("attest", "EVIDENCE_UNREADABLE", exc.message, **record) from None
        record["evidence_sha256"] = [_sha(d.report) for d in devices]
        spki = spki_der(key)
        expected = binding_nonce(nonce, spki)
        config, policy = self.loaded.config, self.loaded.policy
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
            raise self._refuse(
                "attest",
                "NONCE_MISMATCH",
                "evidence was not made for this challenge and key",
                failed_steps=failed,
                **record,
            )
        if failed:
            raise self._refuse(
                "attest",
                "EVIDENCE_REJECTED",
                "verification failed: " + ", ".join(failed),
                failed_steps=failed,
                **record,
            )
        decision = evaluate(policy, result)
        record["policy"] = {
            "id": decision.policy_id,
            "version": decision.policy_version,
            "sha256": decision.policy_hash,
        }
        if not decision.allowed:
            reasons = [f"{r.code}: {r.detail}" for r in decision.reasons]
            raise self._refuse(
                "attest", "POLICY_DENIED", "; ".join(reasons), reasons=reasons, **record
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
            "policy": record["policy"],
            "cnf": {"spki": b64e(spki)},
        }
        token = self.signer.sign(claims)
        self.audit.append(
            "attest", "allowed", ts=now, detail={**record, "jti_sha256": _sha(jti.encode())}
        )
        return {"token": token, "expires_at": claims["exp"], "policy_sha256": decision.policy_hash}

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
        if claims.get("policy", {}).get("sha256") != self.loaded.policy.digest():
            raise self._refuse(
                "release", "TOKEN_INVALID", "token was issued under another policy", **record
            )
        try:
            recipient = load_public_key(base64.urlsafe_b64decode(claims["cnf"]["spki"] + "=="))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise self._refuse(
                "release", "TOKEN_INVALID", "token has no usable cnf.spki", **record
            ) from None
        secret = self.store.get_secret(resource_id)
        if secret is None:
            raise self._refuse(
                "release", "RESOURCE_UNKNOWN", f"no resource {resource_id!r}", **record
            )
        if not self.store.spend_token(jti, now):
            raise self._refuse("release", "TOKEN_REPLAYED", "this token was already used", **record)
        info = f"gpufence-broker/v1|{resource_id}|{jti}".encode()
        sealed = hpke_seal(secret, recipient, info)
        self.audit.append("release", "allowed", ts=now, detail=record)
        return {
            "resource": resource_id,
            "alg": HPKE_ALG,
            "info": info.decode(),
            "ciphertext": b64e(sealed),
        }
