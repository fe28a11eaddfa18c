"""Writing command output to stdout or ``-o/--output FILE``; recording runs in a ``--store``;
display filters and ``--baseline``, shared by every finding-producing command."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Protocol, TextIO, TypeVar

import typer

from gpufence import __version__
from gpufence.errors import InputError
from gpufence.model.findings import (
    INTERNAL_ERROR_KEY,
    AuditResult,
    Severity,
    Status,
    fingerprint_of,
    rows_of,
    summarize,
)
from gpufence.model.history import (
    FindingState,
    RunInfo,
    new_relative_to,
    policy_digest,
    states_of,
)
from gpufence.model.mutelist import Mute, apply_mutes
from gpufence.report import OutputFormat, TextOptions, write_report

__all__ = [
    "DEFAULT_STORE",
    "BaselineOption",
    "HideMutedOption",
    "QuietOption",
    "SeverityOption",
    "Started",
    "StatusOption",
    "StoreOption",
    "Triage",
    "emit",
    "muted",
    "report_findings",
    "warn_mutes",
]

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="GPUFENCE_STORE",
        metavar="STORE",
        help="Record this run in a findings store: 'default' (SQLite under $XDG_STATE_HOME/"
        "gpufence), a file path, sqlite:///PATH or postgresql://USER@HOST/DB.",
    ),
]
BaselineOption = Annotated[
    str | None,
    typer.Option(
        "--baseline",
        metavar="RUN|FILE",
        help="Report only what is new relative to a stored run (id, 'latest', 'latest~N'; "
        "needs --store) or a saved JSON report (file).",
    ),
]
SeverityOption = Annotated[
    list[str] | None,
    typer.Option(
        "--severity",
        metavar="LEVELS",
        help="Text output: list only these severities (comma list, repeatable).",
    ),
]
StatusOption = Annotated[
    list[str] | None,
    typer.Option(
        "--status", metavar="STATUSES", help="Text output: list only these statuses (comma list)."
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Text output: only the failures and the verdict.")
]
HideMutedOption = Annotated[
    bool, typer.Option("--hide-muted", help="Text output: do not list MUTED findings.")
]
DEFAULT_STORE = "default"
"""Same as gpufence.store.DEFAULT_STORE; not imported from there so that commands which do not
touch a store do not pay for SQLAlchemy at start-up."""

HISTORY_RUNS = 20
"""Runs of the same target an HTML report's trend shows."""


class EvidenceStamped(Protocol):
    """What ``--store`` records of each evidence document a run read (an
    :class:`~gpufence.model.evidence.EvidenceDocument` is one)."""

    @property
    def subject(self) -> str: ...
    @property
    def collector(self) -> str: ...
    @property
    def collected_at(self) -> dt.datetime: ...


@dataclass(frozen=True, slots=True)
class Started:
    """When a command started (wall clock for the record, monotonic for the duration)."""

    at: datetime
    monotonic: float

    @classmethod
    def now(cls) -> Started:
        """Now."""
        return cls(datetime.now(UTC), time.monotonic())


_E = TypeVar("_E", Severity, Status)


def _members(kind: type[_E], values: list[str] | None, option: str) -> frozenset[_E] | None:
    if not values:
        return None
    chosen: set[_E] = set()
    for value in values:
        for word in filter(None, (w.strip() for w in value.split(","))):
            match = [m for m in kind if m.value.lower() == word.lower()]
            if not match:
                allowed = ", ".join(m.value for m in kind)
                raise InputError(f"{option} {word!r}: expected one of {allowed}")
            chosen.add(match[0])
    return frozenset(chosen)


@dataclass(frozen=True, slots=True)
class Triage:
    """Display filters, store and baseline of a finding-producing command."""

    show_pass: bool = False
    severity: list[str] | None = None
    status: list[str] | None = None
    quiet: bool = False
    hide_muted: bool = False
    store: str | None = None
    baseline: str | None = None
    command: str = "audit"
    started: Started = field(default_factory=Started.now)
    evidence: Sequence[EvidenceStamped] = ()
    """The evidence the run read (``--store`` records subject, collector and time of each)."""
    require_evidence: bool = False
    """``--require-evidence``: an INCOMPLETE verdict exits 1 (docs/evidence.md)."""

    def text_options(self) -> TextOptions:
        """The text renderer's options (input errors for unknown severities or statuses)."""
        return TextOptions(
            show_pass=self.show_pass,
            severities=_members(Severity, self.severity, "--severity"),
            statuses=_members(Status, self.status, "--status"),
            quiet=self.quiet,
            hide_muted=self.hide_muted,
        )


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (created/overwritten) or to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None


@contextmanager
def _opened(output: Path | None) -> Iterator[TextIO]:
    """Stdout, or ``output`` created/overwritten as UTF-8; a failed write is an input error."""
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        with output.open("w", encoding="utf-8") as out:
            yield out
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None


def _report_states(path: Path) -> list[FindingState]:
    """The findings of a saved ``--format json`` report, by fingerprint."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != "gpufence.findings/v1":
        raise InputError(f"{path}: not a gpufence JSON report (schema gpufence.findings/v1)")
    states: list[FindingState] = []
    for i, item in enumerate(doc.get("findings") or []):
        try:
            states.append(
                FindingState(
                    fingerprint=fingerprint_of(item["control"], item["resource"]),
                    control=item["control"],
                    plane=item["plane"],
                    severity=item["severity"],
                    status=item["status"],
                    resource=item["resource"],
                    message=item.get("message", ""),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: findings[{i}] is not a finding: {exc}") from None
    return states


def resolve_findings(ref: str, store_url: str | None) -> tuple[str, list[FindingState]]:
    """A run's findings for ``--baseline`` or ``diff``: a JSON report file or a stored run."""
    path = Path(ref)
    if path.is_file():
        return str(path), _report_states(path)
    if store_url is None or ref.endswith(".json"):
        raise InputError(f"{ref}: no such report file (a stored run needs --store)")
    from gpufence.store import open_store

    with open_store(store_url) as store:
        run = store.run(ref)
        return f"run {run.id}", store.findings(run.id)


def _record(
    store_url: str, result: AuditResult, fail_on: Severity | None, triage: Triage
) -> tuple[int, list[RunInfo], str]:
    from gpufence.store import EvidenceStamp, NewRun, digest_inputs, open_store

    full = summarize(result.findings, fail_on)
    target = result.inputs[0] if result.inputs else triage.command
    run = NewRun(
        started_at=triage.started.at,
        duration_s=round(time.monotonic() - triage.started.monotonic, 6),
        command=triage.command,
        target=target,
        tool_version=__version__,
        policy_digest=policy_digest(result.controls),
        verdict=full.verdict,
        fail_on=full.fail_on,
        inputs=digest_inputs(result.inputs),
        evidence=tuple(
            EvidenceStamp(subject=d.subject, collector=d.collector, collected_at=d.collected_at)
            for d in triage.evidence
        ),
        findings=states_of(result.findings),
    )
    with open_store(store_url) as store:
        run_id = store.record(run)
        return run_id, store.runs(limit=HISTORY_RUNS, target=target), store.url


def report_findings(
    result: AuditResult,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: Severity | None,
    *,
    show_pass: bool = False,
    triage: Triage | None = None,
) -> int:
    """Record ``result`` (``--store``), apply ``--baseline``, render to stdout or ``output``, and
    return the exit code (DESIGN.md).

    3 when a control crashed (a bug, never a clean result), 1 when a FAIL at or above
    ``fail_on`` exists among the reported findings (``None``: never) or, with
    ``triage.require_evidence``, when the verdict is INCOMPLETE; else 0.
    """
    triage = triage or Triage(show_pass=show_pass)
    text_options = triage.text_options()  # bad --severity/--status fail before anything is stored
    baseline: tuple[str, list[FindingState]] | None = None
    if triage.baseline is not None:
        # Resolved before recording, so 'latest' means the run before this one.
        baseline = resolve_findings(triage.baseline, triage.store)
    history: list[RunInfo] = []
    if triage.store is not None:
        run_id, history, shown_url = _record(triage.store, result, fail_on, triage)
        sys.stderr.write(f"recorded run {run_id} in {shown_url}\n")
    if baseline is not None:
        label, states = baseline
        kept, dropped = new_relative_to(result.findings, states)
        result = result.model_copy(update={"findings": kept})
        sys.stderr.write(
            f"baseline {label}: {dropped} finding(s) unchanged since then are not reported\n"
        )
    summary = summarize(result.findings, fail_on)
    color = output is None and fmt is OutputFormat.text and sys.stdout.isatty()
    with _opened(output) as out:
        write_report(
            result,
            summary,
            fmt,
            out,
            color=color,
            text_options=text_options,
            history=tuple(history),
        )
    if output is not None:
        sys.stderr.write(f"wrote {fmt.value} report to {output} (verdict: {summary.verdict})\n")
    if any(
        status is Status.ERROR and INTERNAL_ERROR_KEY in evidence
        for _, _, status, _, _, _, evidence in rows_of(result.findings)
    ):
        return 3
    if summary.verdict == "fail" or (triage.require_evidence and summary.verdict == "incomplete"):
        return 1
    return 0


def warn_mutes(expired: tuple[Mute, ...], unused: tuple[Mute, ...]) -> None:
    """Report expired and unused mutelist entries on stderr (they are never silent)."""
    for mute in expired:
        sys.stderr.write(
            f"warning: mute {mute.control} {mute.resource} expired on {mute.expires}; "
            "it muted nothing\n"
        )
    for mute in unused:
        sys.stderr.write(f"warning: mute {mute.control} {mute.resource} matched no finding\n")


def muted(result: AuditResult, mutelist: Path | None) -> AuditResult:
    """``result`` with the mutelist applied (warnings on stderr); unchanged without one."""
    if mutelist is None:
        return result
    from gpufence.load.mutelist import load_mutelist

    outcome = apply_mutes(result.findings, load_mutelist(mutelist), dt.date.today())
    warn_mutes(outcome.expired, outcome.unused)
    return result.model_copy(update={"findings": outcome.findings})
