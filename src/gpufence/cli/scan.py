"""`gpufence scan`: live scans. `scan bmc`: Redfish + IPMI audit of BMCs (read-only by default)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import (
    FailOn,
    FailOnOpt,
    MutelistOpt,
    OutputOpt,
    ShowPassOpt,
    format_option,
)
from gpufence.cli._output import (
    BaselineOption,
    HideMutedOption,
    QuietOption,
    SeverityOption,
    Started,
    StatusOption,
    StoreOption,
    Triage,
    muted,
    report_findings,
)
from gpufence.cli._progress import counter
from gpufence.collect.bmc.credentials import load_credentials
from gpufence.collect.bmc.evidence import EvidenceWriter, scan_snapshot
from gpufence.collect.bmc.parallel import Document, default_workers, scan_streaming
from gpufence.collect.bmc.scanner import ScanOptions
from gpufence.collect.bmc.targets import (
    BmcTarget,
    parse_targets,
    read_targets_file,
    targets_from_inventory,
)
from gpufence.collect.shard import parse_shard
from gpufence.controls import ALL_CONTROLS
from gpufence.controls.batches import audit_in_batches
from gpufence.controls.oob.topology import TOPOLOGY_CONTROLS
from gpufence.errors import InputError
from gpufence.load.evidence import check_subjects
from gpufence.load.inventory import load_snapshot
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import FindingTable, Plane
from gpufence.model.snapshot import Snapshot
from gpufence.report import OutputFormat

app = sub_app("Live scans: scan bmc.")


@app.callback()
def _group() -> None:
    """Live scans: scan bmc."""


_KEPT_RAW = ("state", "reason")
"""What the findings step reads of a document's ``raw``; the rest is only in the file."""

_BATCH = 500
"""BMCs per batch of the findings step (``audit_in_batches``): ~20 MB of their facts at a time."""


@dataclass(frozen=True)
class _Scanned:
    """What the summary and ``--store`` need of one BMC's document."""

    subject: str
    collector: str
    collected_at: datetime
    state: str
    reason: object


class _Spool:
    """Slim copies of the scanned BMCs' documents (facts and scan state, without the raw detail)
    in an anonymous temporary file, read back by target index.

    The findings step audits them a batch at a time, so the command's memory does not grow with
    ~44 KB of facts per BMC (10,000 BMCs held 440 MB of them in memory).
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._at: dict[int, tuple[int, int]] = {}
        self.scanned: dict[int, _Scanned] = {}

    def add(self, index: int, document: Document) -> None:
        # ``document`` is an evidence document's JSON dump, validated where it was made; it is
        # validated again when read back (documents()), not here.
        raw = document.get("raw") or {}
        kept = {key: raw[key] for key in _KEPT_RAW if key in raw}
        data = json.dumps({**document, "raw": kept}, separators=(",", ":")).encode()
        self._at[index] = (self._file.seek(0, os.SEEK_END), len(data))
        self._file.write(data)
        self.scanned[index] = _Scanned(
            str(document["subject"]),
            str(document["collector"]),
            datetime.fromisoformat(str(document["collected_at"])),
            str(kept.get("state")),
            kept.get("reason"),
        )

    def documents(self, indices: Iterable[int]) -> list[EvidenceDocument]:
        found = []
        for index in indices:
            if (at := self._at.get(index)) is not None:
                self._file.seek(at[0])
                found.append(EvidenceDocument.model_validate_json(self._file.read(at[1])))
        return found

    def in_order(self) -> list[_Scanned]:
        return [self.scanned[i] for i in sorted(self.scanned)]

    def close(self) -> None:
        self._file.close()


def _run(
    targets: list[BmcTarget],
    opts: ScanOptions,
    credentials: Path | None,
    bar: bool | None,
    workers: int | None,
    out: Path,
) -> tuple[_Spool, bool]:
    """Scan, writing each BMC's evidence to ``out`` as it finishes and a slim copy to a spool."""
    store = load_credentials(credentials)
    count = workers if workers is not None else default_workers(len(targets))
    spool = _Spool()
    try:
        with (
            counter("scan bmc: BMCs scanned", len(targets), bar) as advance,
            EvidenceWriter(out) as writer,
        ):

            def emit(index: int, document: Document) -> None:
                writer.add(document)
                spool.add(index, document)
                advance()

            interrupted = scan_streaming(targets, store, opts, emit, workers=count)
    except BaseException:
        spool.close()
        raise
    if interrupted:
        sys.stderr.write("interrupted: wrote what was scanned so far\n")
    return spool, interrupted


def _related(resource: str, names: set[str], nodes: set[str]) -> bool:
    if resource == "cluster":
        return True
    if resource.startswith("bmc/"):
        return resource.split("/")[1] in names
    return resource.startswith("node/") and resource.split("/")[1] in nodes


@app.command("bmc")
def scan_bmc(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE",
            dir_okay=False,
            help="Evidence file to write, one document per BMC as it finishes (*.jsonl: JSON "
            "Lines; otherwise one JSON document).",
        ),
    ],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            metavar="TARGET",
            help="[NAME=]https://HOST[:PORT] (Redfish) or [NAME=]ipmi://HOST[:PORT]; repeatable.",
        ),
    ] = None,
    targets_file: Annotated[
        Path | None,
        typer.Option(
            "--targets-file",
            metavar="FILE",
            dir_okay=False,
            help="Targets, one [NAME=]URL per line ('#' comments and blank lines allowed).",
        ),
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            "-i",
            metavar="INVENTORY",
            dir_okay=False,
            help="Scan the BMCs of this inventory.",
        ),
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            "--credentials",
            "-c",
            metavar="FILE",
            help="Credentials YAML (default: $GPUFENCE_BMC_USERNAME / $GPUFENCE_BMC_PASSWORD).",
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle", metavar="FILE", help="CA certificates that sign the BMC certs."
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify BMC certificates (not advised).")
    ] = False,
    intrusive: Annotated[
        bool,
        typer.Option(
            "--intrusive",
            help="Also try cipher-suite-0, vendor default credentials (within the lockout "
            "policy) and an unauthenticated write.",
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, max=4096, metavar="N", help="BMCs at once.")
    ] = 64,
    bmc_timeout: Annotated[
        float,
        typer.Option("--bmc-timeout", min=1, metavar="SECONDS", help="Seconds allowed per BMC."),
    ] = 60.0,
    budget: Annotated[
        float | None,
        typer.Option(min=1, metavar="SECONDS", help="Seconds allowed for the whole scan."),
    ] = None,
    connect_timeout: Annotated[
        float,
        typer.Option(min=0.1, metavar="SECONDS", help="Seconds to open a connection to a BMC."),
    ] = 5.0,
    read_timeout: Annotated[
        float,
        typer.Option(min=0.1, metavar="SECONDS", help="Seconds to wait for a BMC's response."),
    ] = 10.0,
    no_ipmi: Annotated[
        bool, typer.Option("--no-ipmi", help="Skip the UDP 623 probe of Redfish targets.")
    ] = False,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.text,
    output: OutputOpt = None,
    fail_on: FailOnOpt = FailOn.low,
    show_pass: ShowPassOpt = False,
    mutelist: MutelistOpt = None,
    require_evidence: Annotated[
        bool,
        typer.Option(
            "--require-evidence",
            help="Exit 1 when the verdict is INCOMPLETE (controls not evaluated).",
        ),
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            help="Progress bar on stderr (default: when stderr is a terminal; otherwise a "
            "progress line every GPUFENCE_PROGRESS_SECONDS, default 10)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            metavar="N",
            help="Scanner processes (default: one per CPU, from 64 BMCs).",
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="I/N: scan only shard I (0 to N-1) of the targets, split by a hash of the BMC "
            "name; the N evidence files together give one audit (pass them all to --evidence).",
        ),
    ] = None,
    store: StoreOption = None,
    baseline: BaselineOption = None,
    severity: SeverityOption = None,
    status: StatusOption = None,
    quiet: QuietOption = False,
    hide_muted: HideMutedOption = False,
) -> None:
    """Scan BMCs over Redfish and IPMI, write evidence, print the OOB/FW findings."""
    started = Started.now()
    given = [inventory is not None, bool(target), targets_file is not None]
    if sum(given) != 1:
        raise InputError(
            "give one of --inventory INVENTORY, --target TARGET (repeatable), --targets-file FILE"
        )
    if insecure and ca_bundle is not None:
        raise InputError("--insecure and --ca-bundle contradict each other; give one")
    if ca_bundle is not None and not ca_bundle.is_file():
        raise InputError(f"{ca_bundle}: no such CA bundle")
    if inventory is not None:
        declared = load_snapshot(inventory).inventory
        targets = targets_from_inventory(declared, ipmi_probe=not no_ipmi)
        if not targets:
            raise InputError(f"{inventory}: the inventory declares no BMCs")
    else:
        values = read_targets_file(targets_file) if targets_file is not None else target or []
        targets = parse_targets(values, ipmi_probe=not no_ipmi)
    if shard is not None:
        part = parse_shard(shard)
        everything = len(targets)
        targets = part.select(targets, lambda t: t.name)
        sys.stderr.write(f"shard {part}: {len(targets)} of {everything} BMC(s)\n")
    opts = ScanOptions(
        concurrency=concurrency,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        bmc_timeout=bmc_timeout,
        budget=budget,
        ca_bundle=ca_bundle,
        insecure=insecure,
        intrusive=intrusive,
    )
    spool, interrupted = _run(targets, opts, credentials, progress, workers, out)
    scanned = spool.in_order()
    _summary(scanned, out)
    triage = Triage(
        show_pass=show_pass,
        severity=severity,
        status=status,
        quiet=quiet,
        hide_muted=hide_muted,
        store=store,
        baseline=baseline,
        command="scan bmc",
        started=started,
        evidence=scanned,
        require_evidence=require_evidence,
    )
    with closing(spool):
        code = _findings(spool, targets, inventory, out, fmt, output, fail_on, triage, mutelist)
    raise typer.Exit(130 if interrupted else code)


def _summary(scanned: list[_Scanned], out: Path) -> None:
    states: dict[str, int] = {}
    for bmc in scanned:
        states[bmc.state] = states.get(bmc.state, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    sys.stderr.write(f"wrote {out}: {len(scanned)} BMC(s): {counts}\n")
    for bmc in scanned:
        if bmc.state != "scanned":
            sys.stderr.write(f"  {bmc.subject}: {bmc.state}: {bmc.reason}\n")


def _batches(
    spool: _Spool, targets: list[BmcTarget]
) -> Iterator[tuple[list[BmcTarget], list[EvidenceDocument]]]:
    """The targets ``_BATCH`` at a time, each batch with its documents read back."""
    for start in range(0, len(targets), _BATCH):
        yield targets[start : start + _BATCH], spool.documents(range(start, start + _BATCH))


def _findings(
    spool: _Spool,
    targets: list[BmcTarget],
    inventory: Path | None,
    out: Path,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: FailOn,
    triage: Triage,
    mutelist: Path | None,
) -> int:
    """Run the OOB/FW controls over what was scanned and print them; returns the exit code."""
    planes = (Plane.OOB, Plane.FW)
    origin = str(out)
    names = {t.name for t in targets}
    nodes: set[str] = set()
    if inventory is not None:
        base = load_snapshot(inventory)
        controls = [c for c in ALL_CONTROLS if c.meta.plane in planes]
        nodes = {n.name for p in base.inventory.node_pools for n in p.nodes if n.bmc in names}

        def scoped() -> Iterator[Snapshot]:
            # The inventory whole, seen through a batch of its BMCs and the nodes they manage.
            for number, (batch, documents) in enumerate(_batches(spool, targets)):
                located = [(d, origin) for d in documents]
                check_subjects(base.inventory, located)
                view = base.scoped((t.name for t in batch), unmanaged=number == 0)
                yield view.with_evidence(located)

        result = audit_in_batches(scoped, base.with_evidence, controls, [origin])
    else:
        controls = [
            c for c in ALL_CONTROLS if c.meta.plane in planes and c.id not in TOPOLOGY_CONTROLS
        ]

        def batches() -> Iterator[Snapshot]:
            for batch, documents in _batches(spool, targets):
                yield scan_snapshot(batch, documents, origin)

        result = audit_in_batches(
            batches,
            lambda documents: scan_snapshot(targets, [d for d, _ in documents], origin),
            controls,
            [origin],
        )
    findings = result.findings
    if not isinstance(findings, FindingTable):
        findings = FindingTable(findings)
    kept = findings.empty_like()
    kept.extend_rows(
        findings, [p for p, row in enumerate(findings.rows()) if _related(row[4], names, nodes)]
    )
    if inventory is None:
        kept.clear_locations()  # no inventory file to point into, only the evidence's line 1
    result = muted(result.model_copy(update={"findings": kept}), mutelist)
    return report_findings(result, fmt, output, fail_on.severity(), triage=triage)
