"""What a CPU TEE verification returns: named steps, a verdict, the facts read from the report.

The steps are the GPU verifier's :class:`~gpufence.attest.verify.Step` (``pass``, ``fail``,
``not_evaluated`` with a detail). The verdict is strict: any ``fail`` fails; any
``not_evaluated`` step that the caller did not waive by name makes the result ``incomplete``
(never ``pass``), so a report whose measurement, report data or collateral nobody compared
cannot read as a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue

from gpufence.attest.verify import Step, check_waivers, is_waived

__all__ = [
    "CVM_EXACT_ONLY",
    "CVM_STEP_NAMES",
    "CvmKind",
    "CvmParseError",
    "CvmResult",
    "CvmVerdict",
    "check_cvm_waivers",
    "cvm_waived",
]

CvmKind = Literal["sev-snp", "tdx"]
CvmVerdict = Literal["pass", "fail", "incomplete"]
_RTMRS = ("rtmr0", "rtmr1", "rtmr2", "rtmr3")
CVM_STEP_NAMES: tuple[str, ...] = (
    "evidence.parse",
    "product",
    "qe_vendor",
    "cert_chain",
    "vcek.binding",
    "qe_report.signature",
    "qe_report.binding",
    "signature",
    "tcb",
    "tcb.minimum",
    "policy.debug",
    "policy.migration_agent",
    "policy.smt",
    "td.debug",
    "td.seam_attributes",
    "measurement",
    "mrtd",
    *_RTMRS,
    "report_data",
    "collateral.signing_chain",
    "collateral.tcb_info",
    "collateral.qe_identity",
    "collateral.tcb_level",
)
"""Every SEV-SNP and TDX step name; a waiver must name at least one of them."""
CVM_EXACT_ONLY = ("measurement", "mrtd", *_RTMRS, "report_data")
"""Steps a waiver must name exactly: a wildcard never waives a measurement or the binding."""


def check_cvm_waivers(patterns: Iterable[str]) -> None:
    """ValueError unless each pattern (fnmatch) names CVM steps and no wildcard reaches a
    measurement or the report-data binding."""
    check_waivers(patterns, CVM_STEP_NAMES, CVM_EXACT_ONLY, label="CVM waiver")


def cvm_waived(step: str, patterns: Iterable[str]) -> bool:
    """Whether ``step`` is waived by one of ``patterns`` (exact names for measurements)."""
    return is_waived(step, patterns, CVM_EXACT_ONLY)


class CvmParseError(ValueError):
    """The bytes are not a report/quote of the expected layout (offset and reason in the text)."""


@dataclass(frozen=True)
class CvmResult:
    """Every step over one CPU TEE report, the report data it carries and the facts it states."""

    kind: CvmKind
    steps: tuple[Step, ...]
    report_data: bytes | None
    """The 64 bytes of caller data the TEE signed (None when the report did not parse)."""
    facts: Mapping[str, JsonValue] = field(default_factory=dict)
    """Parsed fields for display and policy (hex strings, integers, flags)."""
    waived: frozenset[str] = frozenset()
    """Step names whose ``not_evaluated`` the caller accepted by name."""

    def step(self, name: str) -> Step | None:
        """The step called ``name`` (None when it did not run)."""
        return next((s for s in self.steps if s.name == name), None)

    @property
    def unevaluated(self) -> tuple[str, ...]:
        """Names of steps that were not evaluated and not waived."""
        return tuple(
            s.name for s in self.steps if s.status == "not_evaluated" and s.name not in self.waived
        )

    @property
    def verdict(self) -> CvmVerdict:
        """``fail`` on any failed step, else ``incomplete`` on any unwaived gap, else ``pass``."""
        if not self.steps or any(s.status == "fail" for s in self.steps):
            return "fail"
        return "incomplete" if self.unevaluated else "pass"

    def as_json(self) -> dict[str, JsonValue]:
        """The result as a JSON document (``verdict``, ``steps``, ``facts``, ``waived``)."""
        return {
            "kind": self.kind,
            "verdict": self.verdict,
            "report_data": self.report_data.hex() if self.report_data is not None else None,
            "steps": [s.as_json() for s in self.steps],
            "waived": list[JsonValue](sorted(self.waived)),
            "facts": dict(self.facts),
        }
