"""Appraisal policy: default deny, versioned, hashed.

A verification result is allowed only when every rule holds: the verdict is pass; every step
passed, except steps the policy names in ``accept_not_evaluated`` (e.g. ``revocation`` for an
offline site), which may be ``not_evaluated`` but never ``fail``; device counts, version
allow-lists and required claims (NVIDIA's JSON-policy equality, nested objects recurse) hold;
and, when given, NVIDIA's Rego relying-party policy (``data.policy.nv_match``) says true.

The policy hash is SHA-256 over the canonical JSON of the policy (plus the Rego text), so every
decision and token can name exactly what allowed it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, JsonValue, ValidationError, field_validator

from gpufence._frozen import Frozen
from gpufence._yaml import LocatedDocument, load_yaml
from gpufence.attest.claims import device_claims
from gpufence.attest.cvm.result import check_cvm_waivers
from gpufence.attest.verify import SetResult, check_waivers, is_waived
from gpufence.errors import InputError

__all__ = [
    "CvmRequirement",
    "Decision",
    "Policy",
    "Reason",
    "evaluate",
    "load_policy",
    "policy_from_mapping",
]

CvmKind = Literal["sev-snp", "tdx"]


class CvmRequirement(Frozen):
    """The CPU half of a composite attestation: the confidential VM the requester must run in."""

    required: bool = Field(
        default=False, description="Refuse unless a CVM report of an allowed kind verifies."
    )
    kinds: tuple[CvmKind, ...] = Field(
        default=("sev-snp", "tdx"), min_length=1, description="Accepted CPU TEEs."
    )
    snp_measurements: tuple[str, ...] = Field(
        default=(),
        description="Allowed SEV-SNP launch MEASUREMENTs (96 hex digits); empty: not evaluated.",
    )
    snp_min_tcb: tuple[int, int, int, int] | None = Field(
        default=None,
        description="Minimum SEV-SNP reported TCB (bootloader, TEE, SNP, microcode SPLs).",
    )
    tdx_mrtds: tuple[str, ...] = Field(
        default=(), description="Allowed TDX MRTDs (96 hex digits); empty: not evaluated."
    )
    tdx_rtmrs: dict[int, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Allowed TDX RTMR values by index 0..3; an index not listed: not evaluated.",
    )
    allow_debug: bool = Field(
        default=False, description="Accept a debuggable guest (SNP policy DEBUG, TDX TUD bits)."
    )
    allow_migration_agent: bool = Field(
        default=False, description="Accept an SNP guest policy that allows a migration agent."
    )

    @field_validator("snp_measurements", "tdx_mrtds")
    @classmethod
    def _measurements_are_hex(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            _hex48(value)
        return values

    @field_validator("tdx_rtmrs")
    @classmethod
    def _rtmrs_are_hex(cls, values: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        for index, allowed in values.items():
            if index not in range(4):
                raise ValueError(f"RTMR index {index} is not 0..3")
            for value in allowed:
                _hex48(value)
        return values


def _hex48(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{value!r} is not hex") from None
    if len(raw) != 48:
        raise ValueError(f"{value!r} is {len(raw)} bytes, a measurement is 48")
    return raw


class Policy(Frozen):
    """What a verification result must show before anything is released."""

    id: str = Field(min_length=1, description="Stable name of the policy.")
    version: int = Field(ge=1, description="Bumped on every change; recorded in each decision.")
    devices: dict[str, int] | None = Field(
        default=None,
        description="Exact device counts, e.g. {gpu: 8, nvswitch: 4}; omitted: at least one.",
    )
    allowed_driver_versions: tuple[str, ...] = ()
    allowed_vbios_versions: tuple[str, ...] = ()
    allowed_switch_bios_versions: tuple[str, ...] = ()
    accept_not_evaluated: tuple[str, ...] = Field(
        default=(),
        description="Waivers: step names (fnmatch patterns) that may be not_evaluated, e.g. "
        "'revocation'; each must name a step, and nonce/measurements only by exact name.",
    )
    allowed_ueids: tuple[str, ...] = Field(
        default=(),
        description="Device identities (leaf certificate serial, the ueid claim) allowed; "
        "empty: any. Pins a resource to the GPUs allocated to its tenant.",
    )
    cvm: CvmRequirement | None = Field(
        default=None, description="Composite CPU requirement (AMD SEV-SNP / Intel TDX guest)."
    )
    allow_devtools: bool = Field(
        default=False,
        description="Accept devices whose claims do not show dbgstat=disabled (debug/devtools).",
    )
    required_claims: dict[str, JsonValue] = Field(
        default_factory=dict, description="Per-device claims that must be equal (NVIDIA semantics)."
    )
    rego: str | None = Field(
        default=None, description="NVIDIA Rego relying-party policy text (needs regopy)."
    )

    @field_validator("accept_not_evaluated")
    @classmethod
    def _waivers_name_steps(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_waivers([p for p in value if not p.startswith("cvm.")])
        check_cvm_waivers([p.removeprefix("cvm.") for p in value if p.startswith("cvm.")])
        return value

    def digest(self) -> str:
        """SHA-256 of the policy's canonical JSON: which policy decided, in logs and tokens."""
        return self.canonical_sha256

    @cached_property
    def canonical_sha256(self) -> str:
        """:meth:`digest`, computed once (the model is frozen; a broker asks on every request)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def accepts_unchecked_revocation(self) -> bool:
        """Whether the policy accepts a revocation step that was not evaluated (offline)."""
        return any(fnmatch.fnmatch("revocation", p) for p in self.accept_not_evaluated)


class Reason(Frozen):
    """Why a policy allowed or denied: a code and the detail."""

    code: str
    detail: str


class Decision(Frozen):
    """A policy's verdict on a verification result, with the reasons."""

    allowed: bool
    reasons: tuple[Reason, ...]
    waived: tuple[str, ...] = ()
    """``device:step`` of every not_evaluated step the policy waived by name."""
    policy_id: str
    policy_version: int
    policy_hash: str


def _matches(want: JsonValue, have: JsonValue) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            k in have and _matches(v, have[k]) for k, v in want.items()
        )
    return bool(want == have)


def _rego_allows(policy_text: str, claims: list[dict[str, JsonValue]]) -> tuple[bool, str]:
    """NVIDIA's relying-party query ``data.policy.nv_match`` over the per-device claims."""
    try:
        from regopy import Interpreter  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return False, "the policy has a Rego part but regopy is not installed (pip install regopy)"
    interpreter = Interpreter()
    try:
        interpreter.add_module("policy", policy_text)
        interpreter.set_input_term(json.dumps(claims))
        output = interpreter.query("x := data.policy.nv_match")
    except Exception as exc:  # noqa: BLE001 - regopy raises its own error type for bad Rego
        return False, f"Rego policy does not evaluate: {str(exc).splitlines()[0]}"
    if not output.ok():
        return False, f"Rego policy does not evaluate: {str(output).splitlines()[0]}"
    value = output.binding("x").json()
    allowed = value == "true"
    return (
        allowed,
        "data.policy.nv_match is true" if allowed else f"data.policy.nv_match is {value}",
    )


def evaluate(policy: Policy, result: SetResult) -> Decision:
    """Default deny: collect every reason to refuse; allow only when there is none."""
    reasons: list[Reason] = []
    if result.judge(policy.accept_not_evaluated) == "fail":
        failed = [f"{who}:{s.name}" for who, s in result.all_steps() if s.status == "fail"]
        reasons.append(Reason(code="VERIFICATION_FAILED", detail=", ".join(failed) or "no devices"))
    waived: list[str] = []
    for who, step in result.all_steps():
        if step.status != "not_evaluated":
            continue
        if is_waived(step.name, policy.accept_not_evaluated):
            waived.append(f"{who}:{step.name}")
        else:
            reasons.append(
                Reason(code="STEP_NOT_EVALUATED", detail=f"{who}:{step.name}: {step.detail}")
            )
    present = {k: sum(1 for d in result.devices if d.kind == k) for k in ("gpu", "nvswitch")}
    if policy.devices is None:
        if not result.devices:
            reasons.append(Reason(code="DEVICE_COUNT", detail="no device evidence"))
    else:
        for kind in ("gpu", "nvswitch"):
            want = policy.devices.get(kind, 0)
            if present[kind] != want:
                reasons.append(
                    Reason(
                        code="DEVICE_COUNT", detail=f"{present[kind]} {kind}, policy wants {want}"
                    )
                )
    claims_list = [device_claims(d) for d in result.devices]
    for device, claims in zip(result.devices, claims_list, strict=True):
        facts = device.facts
        checks = (
            ("gpu", "driver_version", policy.allowed_driver_versions, "DRIVER_NOT_ALLOWED"),
            ("gpu", "vbios_version", policy.allowed_vbios_versions, "VBIOS_NOT_ALLOWED"),
            ("nvswitch", "vbios_version", policy.allowed_switch_bios_versions, "BIOS_NOT_ALLOWED"),
        )
        for kind, attr, versions, code in checks:
            if device.kind != kind or not versions:
                continue
            value = getattr(facts, attr, None) if facts else None
            if value not in versions:
                detail = f"{device.name}: {value} not in {versions}"
                reasons.append(Reason(code=code, detail=detail))
        if policy.allowed_ueids and device.ueid not in policy.allowed_ueids:
            reasons.append(
                Reason(
                    code="DEVICE_NOT_ALLOWED",
                    detail=f"{device.name}: ueid {device.ueid} is not in the policy's allow-list",
                )
            )
        if not policy.allow_devtools and claims.get("dbgstat") != "disabled":
            reasons.append(
                Reason(
                    code="DEBUG_NOT_EXCLUDED",
                    detail=f"{device.name}: dbgstat is not 'disabled' (needs matching RIMs)",
                )
            )
        for key, wanted in policy.required_claims.items():
            if key not in claims or not _matches(wanted, claims[key]):
                reasons.append(
                    Reason(
                        code="CLAIM_MISMATCH",
                        detail=f"{device.name}: {key} is {claims.get(key)!r}, wants {wanted!r}",
                    )
                )
    if policy.rego is not None:
        rego_ok, detail = _rego_allows(policy.rego, claims_list)
        if not rego_ok:
            reasons.append(Reason(code="REGO_DENIED", detail=detail))
    return Decision(
        allowed=not reasons,
        reasons=tuple(reasons),
        waived=tuple(waived),
        policy_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.digest(),
    )


def policy_from_mapping(
    data: Any,
    doc: LocatedDocument | None = None,
    base: Path | None = None,
    prefix: tuple[str | int, ...] = (),
) -> Policy:
    """Validate a policy mapping; ``rego_file`` (relative to ``base``) is read into ``rego``."""
    where = doc.locate(prefix) if doc else None
    if not isinstance(data, Mapping):
        raise InputError("a policy is a mapping (id, version, ...)", location=where)
    values = dict(data)
    rego_file = values.pop("rego_file", None)
    if rego_file is not None:
        path = (base or Path(".")) / str(rego_file)
        try:
            values["rego"] = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"{path}: cannot read Rego policy: {exc.strerror}", location=where
            ) from exc
    try:
        return Policy.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(err["loc"])
        location = doc.locate(prefix + loc) if doc else None
        raise InputError(
            f"policy.{'.'.join(map(str, loc))}: {err['msg']}", location=location
        ) from exc


def load_policy(path: Path) -> Policy:
    """A policy YAML file (the mapping itself, or under a top-level ``policy:`` key)."""
    doc = load_yaml(path)
    nested = isinstance(doc.data, dict) and "policy" in doc.data
    data = doc.data["policy"] if nested else doc.data
    return policy_from_mapping(data, doc, path.parent, ("policy",) if nested else ())
