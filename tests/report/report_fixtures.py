"""Shared test data for the renderer tests (a uniquely named module: `conftest` is ambiguous
when several test folders have one)."""

from __future__ import annotations

from pathlib import Path

from gpufence.model.findings import (
    ControlInfo,
    Finding,
    FindingLocation,
    Plane,
    Severity,
    Status,
)

# Special characters that every format must carry intact (XML/JSON metacharacters + unicode).
NASTY_MESSAGE = 'MIG slice <1g.10gb> & "tenant-ü" shares L2 → ✗'
INVENTORY = "examples/inv dir/inventory.yaml"  # relative, with a space (URI-encoded in SARIF)


def _control(cid: str, plane: Plane, severity: Severity, refs: tuple[str, ...] = ()) -> ControlInfo:
    return ControlInfo(
        id=cid,
        title=f"Title of {cid}",
        plane=plane,
        severity=severity,
        failure_mode=f"Failure mode of {cid}",
        remediation=f"Remediate {cid}",
        references=refs,
    )


CONTROLS: tuple[ControlInfo, ...] = (
    _control(
        "GPU-001",
        Plane.GPU,
        Severity.CRITICAL,
        ("NIST SP 800-53 SC-4", "https://example.org/gpu-001"),
    ),
    _control("GPU-002", Plane.GPU, Severity.HIGH),
    _control("GPU-003", Plane.GPU, Severity.MEDIUM),
    _control("OOB-001", Plane.OOB, Severity.HIGH, ("https://example.org/oob-001",)),
    _control("K8S-001", Plane.K8S, Severity.LOW),
    _control("K8S-002", Plane.K8S, Severity.INFO),
    _control("CC-001", Plane.CC, Severity.CRITICAL),
)
_BY_ID = {c.id: c for c in CONTROLS}


def make_finding(
    cid: str,
    status: Status,
    resource: str,
    *,
    message: str | None = None,
    location: FindingLocation | None = None,
    evidence: dict[str, object] | None = None,
) -> Finding:
    c = _BY_ID[cid]
    return Finding(
        control=c.id,
        title=c.title,
        plane=c.plane,
        severity=c.severity,
        status=status,
        resource=resource,
        message=message or f"{cid} says {status.value} on {resource}",
        evidence=evidence or {},
        remediation=c.remediation,
        references=c.references,
        location=location,
    )


def build_findings(base: Path) -> tuple[Finding, ...]:
    """Findings over three planes (+ CC without findings), every status and severity."""
    return (
        # GPU: 3 FAIL, 2 PASS, 1 NOT_EVALUATED -- given out of order on purpose.
        make_finding("GPU-003", Status.FAIL, "node-b/gpu0"),
        make_finding(
            "GPU-001",
            Status.FAIL,
            "node-a/gpu0",
            message=NASTY_MESSAGE,
            location=FindingLocation(file=str(base / "examples/cluster.yaml"), line=42, column=7),
            evidence={"mig": "<1g.10gb>", "tenants": ["ü", "日本"]},
        ),
        make_finding("GPU-002", Status.PASS, "node-a/gpu0"),
        make_finding("GPU-002", Status.PASS, "node-b/gpu0"),
        make_finding("GPU-002", Status.NOT_EVALUATED, "node-c/gpu0", message="no MIG data"),
        make_finding(
            "GPU-002",
            Status.FAIL,
            "node-c/gpu1",
            location=FindingLocation(file=str(base / "examples/cluster.yaml")),
        ),
        # OOB: 1 ERROR, 1 MUTED.
        make_finding("OOB-001", Status.ERROR, "bmc-1", message="redfish timed out"),
        make_finding(
            "OOB-001",
            Status.MUTED,
            "bmc-2",
            evidence={"mute_reason": "ticket SEC-42 & <waiver>"},
            location=FindingLocation(file="examples/relative.yaml", line=3),
        ),
        # K8S: low FAIL (no location at all), info FAIL, 1 PASS.
        make_finding("K8S-001", Status.FAIL, "ns/tenant-a"),
        make_finding("K8S-002", Status.FAIL, "ns/tenant-b"),
        make_finding("K8S-001", Status.PASS, "ns/tenant-c"),
    )
