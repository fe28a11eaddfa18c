"""Fixtures for the renderer tests: a small, varied audit result."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import CONTROLS, INVENTORY, build_findings

from gpufence.model.findings import AuditResult, Finding


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory to which SARIF paths are made relative."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def findings(base: Path) -> tuple[Finding, ...]:
    return build_findings(base)


@pytest.fixture
def result(findings: tuple[Finding, ...]) -> AuditResult:
    return AuditResult(
        findings=findings,
        controls=CONTROLS,
        inputs=(INVENTORY, "examples/second.yaml"),
        tool_version="9.9.9",
    )
