"""`gpufence scan`: live scans. `scan bmc`: Redfish + IPMI audit of BMCs (read-only by default)."""

from __future__ import annotations

import sys
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
from gpufence.controls import ALL_CONTROLS, audit_snapshot
from gpufence.controls.oob.topology import TOPOLOGY_CONTROLS
from gpufence.errors import InputError
from gpufence.load.inventory import load_snapshot
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import Finding, FindingTable, Plane
from gpufence.report import OutputFormat

app = sub_app("Live scans: scan bmc.")


@app.callback()
def _group() -> None:
    """Live scans: scan bmc."""


_KEPT_RAW = ("state", "reason")
"""What the findings step reads of a document's ``raw``; the rest is only in the file."""


def _run(
    targets: list[BmcTarget],
    opts: ScanOptions,
    credentials: Path | None,
    bar: bool | None,
    workers: int | None,
    out: Path,
) -> tuple[list[EvidenceDocument], bool]:
    """Scan, writing each BMC's evidence to ``out`` as it finishes.

    Only a slim copy of each document stays in memory (facts and scan state, without the raw
    detail), so a fleet of any size costs about the same memory per BMC as its findings.
    """
    store = load_credentials(credentials)
    count = workers if workers is not None else default_workers(len(targets))
    slim: dict[int, EvidenceDocument] = {}
    with (
        counter("scan bmc: BMCs scanned", len(targets), bar) as advance,
        EvidenceWriter(out) as writer,
    ):

        def emit(index: int, document: Document) -> None:
            writer.add(document)
            raw = document.get("raw") or {}
            kept = {key: raw[key] for key in _KEPT_RAW if key in raw}
            slim[index] = EvidenceDocument.model_validate({**document, "raw": kept})
            advance()

        interrupted = scan_streaming(targets, store, opts, emit, workers=count)
    if interrupted:
        sys.stderr.write("interrupted: wrote what was scanned so far\n")
    return [slim[i] for i in sorted(slim)], interrupted


def _related(finding: Finding, names: set[str], nodes: set[str]) -> bool:
    resource = finding.resource
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
    documents, interrupted = _run(targets, opts, credentials, progress, workers, out)
    _summary(documents, out)
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
        evidence=documents,
        require_evidence=require_evidence,
    )
    code = _findings(documents, targets, inventory, out, fmt, output, fail_on, triage, mutelist)
    raise typer.Exit(130 if interrupted else code)


def _summary(documents: list[EvidenceDocument], out: Path) -> None:
    states: dict[str, int] = {}
    for doc in documents:
        states[str(doc.raw["state"])] = states.get(str(doc.raw["state"]), 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    sys.stderr.write(f"wrote {out}: {len(documents)} BMC(s): {counts}\n")
    for doc in documents:
        if doc.raw.get("state") != "scanned":
            sys.stderr.write(f"  {doc.subject}: {doc.raw['state']}: {doc.raw.get('reason')}\n")


def _findings(
    documents: list[EvidenceDocument],
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
    if inventory is not None:
        snap = load_snapshot(inventory, [(d, str(out)) for d in documents])
        controls = [c for c in ALL_CONTROLS if c.meta.plane in planes]
    else:
        snap = scan_snapshot(targets, documents, str(out))
        controls = [
            c for c in ALL_CONTROLS if c.meta.plane in planes and c.id not in TOPOLOGY_CONTROLS
        ]
    result = audit_snapshot(snap, controls, [str(out)])
    names = {t.name for t in targets}
    nodes = {v.node.name for v in snap.nodes if v.node.bmc in names}
    kept = FindingTable(
        # No inventory file to point into: a location would name the evidence file's line 1.
        f if inventory is not None else f.model_copy(update={"location": None})
        for f in result.findings
        if _related(f, names, nodes)
    )
    result = muted(result.model_copy(update={"findings": kept}), mutelist)
    return report_findings(result, fmt, output, fail_on.severity(), triage=triage)
