"""`gpufence fabric`: partitions.conf linter, reachability per plane, observed state, emitter."""

from __future__ import annotations

import json
import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gpufence._yaml import load_yaml
from gpufence.cli._app import app
from gpufence.cli._output import emit
from gpufence.collect.fabric import observe_files, observe_live
from gpufence.errors import InputError, SourceLocation
from gpufence.fabric.check import fabric_report, format_text
from gpufence.fabric.emit import emit_partitions
from gpufence.fabric.lint import LintReport, LintSeverity, lint
from gpufence.fabric.partitions import read_partitions
from gpufence.load.cluster import load_cluster

fabric_app = typer.Typer(
    help="Fabric segmentation: partitions.conf linter, who-reaches-whom per plane, observed "
    "PKey tables, partitions.conf emitter.",
    no_args_is_help=True,
)
app.add_typer(fabric_app, name="fabric")


class Format(StrEnum):
    text = "text"
    json = "json"


class LintFailOn(StrEnum):
    error = "error"
    warning = "warning"


def _lint_text(report: LintReport) -> str:
    lines = []
    for d in report.diagnostics:
        lines.append(f"{report.file}:{d.line}:{d.column}: {d.severity.value} {d.code}: {d.message}")
        lines.append(f"    OpenSM: {d.consequence}")
        lines.append(f"    fix: {d.fix}")
    counts = report.counts()
    tally = ", ".join(f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counts.items())
    if report.fails_open:
        lines.append(
            f"FAIL-OPEN: OpenSM would discard this file and apply Default=0x7fff : ALL=full "
            f"({tally})"
        )
    else:
        lines.append(f"{len(report.partitions)} partition(s); {tally}")
    return "\n".join(lines) + "\n"


# C0 controls other than tab, newline, vertical tab, form feed and carriage return, and DEL.
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _require_text(file: Path) -> None:
    """InputError (exit 2) at the line:column of the first byte that makes ``file`` not text.

    A linter that reports binary garbage as a partitions.conf with errors (exit 1) hides that it
    was given the wrong file.
    """
    try:
        data = file.read_bytes()
    except OSError:
        return  # read_partitions reports an unreadable file in its own words
    bad = _NOT_TEXT.search(data)
    offset = bad.start() if bad is not None else None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start if offset is None else min(offset, exc.start)
    if offset is None:
        return
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    raise InputError(
        f"not a text file: byte 0x{data[offset]:02x} at offset {offset}",
        location=SourceLocation(file, line, column),
        hint="give the OpenSM partitions.conf (plain text)",
    )


@fabric_app.command("lint")
def lint_command(
    file: Annotated[Path, typer.Argument(help="An OpenSM partitions.conf.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    fail_on: Annotated[
        LintFailOn,
        typer.Option(help="Exit 1 when a diagnostic at or above this severity exists."),
    ] = LintFailOn.warning,
    allow_both_pkeys: Annotated[
        bool,
        typer.Option(help="OpenSM runs with -W/--allow_both_pkeys ('both' is then honoured)."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Lint a partitions.conf the way OpenSM 3.3.23 reads it (exit 1 on findings, 2 unreadable)."""
    if file.is_dir():
        raise InputError(f"{file}: is a directory, not a partitions.conf")
    _require_text(file)
    config = read_partitions(file)
    report = lint(config, file.read_bytes(), allow_both_pkeys=allow_both_pkeys)
    if fmt is Format.json:
        doc = report.model_dump(mode="json")
        doc["summary"] = report.counts()
        emit(json.dumps(doc, indent=2) + "\n", output)
    else:
        emit(_lint_text(report), output)
    threshold = LintSeverity(fail_on.value).rank
    raise typer.Exit(1 if any(d.severity.rank >= threshold for d in report.diagnostics) else 0)


@fabric_app.command("check")
def check_command(
    inventory: Annotated[Path, typer.Argument(help="Inventory YAML file.")],
    evidence: Annotated[
        list[Path] | None,
        typer.Option("--evidence", "-e", help="Evidence file or directory (observed PKey tables)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Per plane (InfiniBand, Ethernet/L3, OOB), which tenant reaches which, with the path.

    Exit 1 when a tenant reaches another tenant or a management/OOB network.
    """
    loaded = load_cluster(inventory, evidence or [])
    report = fabric_report(loaded.snapshot)
    if fmt is Format.json:
        emit(report.model_dump_json(indent=2) + "\n", output)
    else:
        emit(format_text(report), output)
    raise typer.Exit(1 if report.leaks else 0)


@fabric_app.command("observe")
def observe_command(
    network: Annotated[str, typer.Argument(help="The inventory's name of this IB network.")],
    live: Annotated[
        bool, typer.Option(help="Run ibnetdiscover, sminfo and smpquery on this host.")
    ] = False,
    ibnetdiscover: Annotated[
        Path | None, typer.Option(help="Saved `ibnetdiscover` (or `ibnetdiscover -p`) output.")
    ] = None,
    pkeys: Annotated[
        Path | None,
        typer.Option(
            help="Saved `smpquery pkeys LID PORT` outputs, each after a "
            "'# smpquery pkeys LID PORT' line."
        ),
    ] = None,
    sminfo: Annotated[Path | None, typer.Option(help="Saved `sminfo` output.")] = None,
    pathrecords: Annotated[
        Path | None, typer.Option(help="Saved `saquery -p --src-to-dst A:B` outputs.")
    ] = None,
    guid2lid: Annotated[Path | None, typer.Option(help="OpenSM's guid2lid cache file.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Evidence file to write (default stdout).")
    ] = None,
) -> None:
    """Record the PKey tables the subnet manager programmed, as evidence for `audit`/`check`."""
    if live:
        doc = observe_live(network, env=dict(os.environ))
    else:
        if ibnetdiscover is None or pkeys is None:
            raise InputError("give --live, or --ibnetdiscover FILE and --pkeys FILE")
        doc = observe_files(
            network,
            ibnetdiscover=ibnetdiscover,
            pkeys=pkeys,
            sminfo=sminfo,
            pathrecords=pathrecords,
            guid2lid=guid2lid,
        )
    emit(doc.model_dump_json(by_alias=True, indent=2) + "\n", out)
    if out is not None:
        sys.stderr.write(f"wrote evidence for fabric/{network} to {out}\n")


@fabric_app.command("emit")
def emit_command(
    plan: Annotated[
        Path,
        typer.Argument(
            help="YAML: tenants: {name: [port GUIDs]}, storage_targets: [GUIDs], pkeys: {name: n}."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Write a partitions.conf: one PKey per tenant, limited-member storage, SELF=full Default."""
    doc = load_yaml(plan)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("tenants"), dict):
        raise InputError(
            "expected a mapping with 'tenants: {name: [port GUIDs]}'", location=doc.locate(())
        )
    unknown = set(data) - {"tenants", "storage_targets", "pkeys"}
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"unknown key {key!r}", location=doc.locate((key,), key=True))
    try:
        text = emit_partitions(
            {str(k): list(v or []) for k, v in data["tenants"].items()},
            list(data.get("storage_targets") or []),
            pkeys={str(k): int(v) for k, v in (data.get("pkeys") or {}).items()},
        )
    except InputError as exc:
        raise exc.with_location(exc.location or SourceLocation(plan)) from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad plan: {exc}", location=SourceLocation(plan)) from None
    emit(text, output)
