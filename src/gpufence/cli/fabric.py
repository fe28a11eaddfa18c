"""`gpufence fabric`: partitions.conf linter, reachability per plane, observed state, emitter."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gpufence._yaml import load_yaml
from gpufence.cli._app import sub_app
from gpufence.cli._options import (
    EvidenceOpt,
    FailOn,
    FailOnOpt,
    InventoryArg,
    InventoryOpt,
    MutelistOpt,
    OutputOpt,
    TextJson,
    deprecated,
    format_option,
)
from gpufence.cli._output import emit, warn_mutes
from gpufence.collect.fabric import observe_files, observe_live
from gpufence.errors import InputError, SourceLocation
from gpufence.fabric.check import FabricReport, fabric_report, format_text
from gpufence.fabric.emit import emit_partitions, tenant_ports
from gpufence.fabric.lint import Diagnostic, LintReport, LintSeverity, lint
from gpufence.fabric.partitions import read_partitions
from gpufence.load.cluster import load_cluster
from gpufence.load.inventory import load_snapshot
from gpufence.model.mutelist import Mute, Mutelist

__all__ = ["app"]

app = sub_app(
    "Fabric segmentation: partitions.conf linter, who-reaches-whom per plane, observed "
    "PKey tables, partitions.conf emitter."
)

LINT_SEVERITY = {LintSeverity.ERROR: FailOn.high, LintSeverity.WARNING: FailOn.medium}
"""Lint levels on the one --fail-on scale (info stays info)."""

PLANE_CONTROL = {
    "infiniband": ("FAB-006", FailOn.critical),
    "ethernet": ("FAB-008", FailOn.high),
    "oob": ("FAB-009", FailOn.critical),
}
"""`fabric check` reach per plane: the audit control that fails on it, and its severity."""


def _mutes(path: Path | None) -> Mutelist | None:
    if path is None:
        return None
    from gpufence.load.mutelist import load_mutelist

    return load_mutelist(path)


class _Muter:
    """Matches (control, resource) pairs against a mutelist and remembers what was used."""

    def __init__(self, mutelist: Mutelist | None) -> None:
        today = dt.date.today()
        self.active = [m for m in mutelist.mutes if m.expires >= today] if mutelist else []
        self.expired = tuple(m for m in mutelist.mutes if m.expires < today) if mutelist else ()
        self.used: set[int] = set()

    def match(self, control: str, resource: str) -> Mute | None:
        import fnmatch

        for index, mute in enumerate(self.active):
            if fnmatch.fnmatchcase(control, mute.control) and fnmatch.fnmatchcase(
                resource, mute.resource
            ):
                self.used.add(index)
                return mute
        return None

    def warn(self) -> None:
        unused = tuple(m for i, m in enumerate(self.active) if i not in self.used)
        warn_mutes(self.expired, unused)


def _lint_level(diagnostic: Diagnostic) -> FailOn:
    return LINT_SEVERITY.get(diagnostic.severity, FailOn.info)


def _lint_text(report: LintReport, muted: dict[int, Mute]) -> str:
    lines = []
    for index, d in enumerate(report.diagnostics):
        mark = " (MUTED)" if index in muted else ""
        lines.append(
            f"{report.file}:{d.line}:{d.column}: {d.severity.value} {d.code}{mark}: {d.message}"
        )
        lines.append(f"    OpenSM: {d.consequence}")
        lines.append(f"    fix: {d.fix}")
        if index in muted:
            lines.append(f"    muted until {muted[index].expires}: {muted[index].reason}")
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


@app.command("lint")
def lint_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", dir_okay=False, help="An OpenSM partitions.conf.")
    ],
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    fail_on: FailOnOpt = FailOn.medium,
    allow_both_pkeys: Annotated[
        bool,
        typer.Option(help="OpenSM runs with -W/--allow_both_pkeys ('both' is then honoured)."),
    ] = False,
    output: OutputOpt = None,
    mutelist: MutelistOpt = None,
) -> None:
    """Lint a partitions.conf the way OpenSM 3.3.23 reads it (exit 1 on findings, 2 unreadable).

    Lint errors rank as high and warnings as medium on the --fail-on scale (default medium:
    fail on warnings and errors). A mutelist entry mutes a diagnostic by its code (control) and
    FILE:LINE (resource).
    """
    if file.is_dir():
        raise InputError(f"{file}: is a directory, not a partitions.conf")
    _require_text(file)
    config = read_partitions(file)
    report = lint(config, file.read_bytes(), allow_both_pkeys=allow_both_pkeys)
    muter = _Muter(_mutes(mutelist))
    muted: dict[int, Mute] = {}
    for index, d in enumerate(report.diagnostics):
        mute = muter.match(d.code, f"{report.file}:{d.line}")
        if mute is not None:
            muted[index] = mute
    muter.warn()
    if fmt is TextJson.json:
        doc: dict[str, Any] = report.model_dump(mode="json")
        for index, entry in enumerate(doc["diagnostics"]):
            entry["level"] = _lint_level(report.diagnostics[index]).value
            if index in muted:
                entry["muted"] = {
                    "reason": muted[index].reason,
                    "expires": muted[index].expires.isoformat(),
                }
        doc["summary"] = report.counts()
        emit(json.dumps(doc, indent=2) + "\n", output)
    else:
        emit(_lint_text(report, muted), output)
    failing = any(
        _lint_level(d).rank >= fail_on.rank
        for index, d in enumerate(report.diagnostics)
        if index not in muted
    )
    raise typer.Exit(1 if failing else 0)


def _check_findings(report: FabricReport) -> list[tuple[str, str, FailOn, str, str]]:
    """(control, resource, level, source, target) per reach finding of every evaluated plane."""
    rows = []
    for plane in report.planes:
        control, level = PLANE_CONTROL[plane.plane]
        resource = f"{'fabric' if plane.basis.startswith('observed') else 'network'}/{plane.scope}"
        rows += [(control, resource, level, r.source, r.target) for r in plane.reach]
    return rows


@app.command("check")
def check_command(
    inventory: InventoryArg,
    evidence: EvidenceOpt = None,
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    output: OutputOpt = None,
    fail_on: FailOnOpt = FailOn.low,
    mutelist: MutelistOpt = None,
) -> None:
    """Per plane (InfiniBand, Ethernet/L3, OOB), which tenant reaches which, with the path.

    Exit 1 when a tenant reaches another tenant or a management/OOB network at or above
    --fail-on: InfiniBand and OOB reach rank critical (FAB-006, FAB-009), Ethernet/L3 reach high
    (FAB-008). A mutelist entry mutes a plane's reach by that control and resource
    (network/NAME or fabric/NAME).
    """
    loaded = load_cluster(inventory, evidence or [])
    report = fabric_report(loaded.snapshot)
    muter = _Muter(_mutes(mutelist))
    failing = False
    muted_lines = []
    for control, resource, level, source, target in _check_findings(report):
        mute = muter.match(control, resource)
        if mute is not None:
            muted_lines.append(f"MUTED {control} {resource}: {source} -> {target} ({mute.reason})")
        elif level.rank >= fail_on.rank:
            failing = True
    muter.warn()
    if fmt is TextJson.json:
        doc = report.model_dump(mode="json")
        doc["muted"] = muted_lines
        emit(json.dumps(doc, indent=2) + "\n", output)
    else:
        text = format_text(report)
        emit(text + "".join(line + "\n" for line in muted_lines), output)
    raise typer.Exit(1 if failing else 0)


@app.command("observe")
def observe_command(
    network: Annotated[
        str,
        typer.Argument(metavar="NETWORK", help="The inventory's name of this IB network."),
    ],
    live: Annotated[
        bool, typer.Option(help="Run ibnetdiscover, sminfo and smpquery on this host.")
    ] = False,
    ibnetdiscover: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Saved `ibnetdiscover` (or `ibnetdiscover -p`) output."),
    ] = None,
    pkeys: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Saved `smpquery pkeys LID PORT` outputs, each after a "
            "'# smpquery pkeys LID PORT' line.",
        ),
    ] = None,
    sminfo: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Saved `sminfo` output.")
    ] = None,
    pathrecords: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Saved `saquery -p --src-to-dst A:B` outputs."),
    ] = None,
    guid2lid: Annotated[
        Path | None, typer.Option(metavar="FILE", help="OpenSM's guid2lid cache file.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Evidence file to write (default stdout)."),
    ] = None,
    legacy_out: Annotated[
        Path | None, typer.Option("-o", hidden=True, help="Deprecated: use --out.")
    ] = None,
) -> None:
    """Record the PKey tables the subnet manager programmed, as evidence for `audit`/`check`."""
    if legacy_out is not None:
        deprecated("fabric observe -o", "--out")
        out = out or legacy_out
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


def _guid_yaml(path: Path) -> str:
    doc = load_yaml(path)
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
        return emit_partitions(
            {str(k): list(v or []) for k, v in data["tenants"].items()},
            list(data.get("storage_targets") or []),
            pkeys={str(k): int(v) for k, v in (data.get("pkeys") or {}).items()},
        )
    except InputError as exc:
        raise exc.with_location(exc.location or SourceLocation(path)) from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad plan: {exc}", location=SourceLocation(path)) from exc


def _plan_node_tenants(path: Path) -> dict[str, list[str]]:
    """node -> tenants from a `gpufence plan` plan.json."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            str(node["name"]): [str(t) for t in node["tenants"]]
            for pool in data["pools"]
            for node in pool["nodes"]
        }
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not a plan.json written by `gpufence plan` ({exc})",
            location=SourceLocation(path),
        ) from exc


@app.command("emit")
def emit_command(
    guids: Annotated[
        Path | None,
        typer.Argument(
            metavar="GUIDS",
            dir_okay=False,
            help="YAML: tenants: {name: [port GUIDs]}, storage_targets: [GUIDs], pkeys: {name: n}"
            " (instead of --inventory).",
        ),
    ] = None,
    inventory: InventoryOpt = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            metavar="FILE",
            dir_okay=False,
            help="plan.json from `gpufence plan`: tenants per node from the plan (needs "
            "--inventory for the port GUIDs).",
        ),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="InfiniBand network of the inventory (needed when it has more than one).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            dir_okay=False,
            help="partitions.conf to write (default stdout).",
        ),
    ] = None,
    legacy_output: Annotated[
        Path | None,
        typer.Option("--output", "-o", hidden=True, help="Deprecated: use --out."),
    ] = None,
) -> None:
    """Write a partitions.conf: one PKey per tenant, limited-member storage, SELF=full Default.

    Port GUIDs come from the inventory (each node's ib_port_guids, the node's tenant from the
    inventory or from --plan), or from a GUID YAML. A node serving several tenants joins no
    tenant partition (named on stderr).
    """
    if legacy_output is not None:
        deprecated("fabric emit -o/--output", "--out")
        out = out or legacy_output
    if plan is not None and inventory is None:
        raise InputError("--plan needs --inventory (the plan names nodes, the inventory GUIDs)")
    if (guids is None) == (inventory is None):
        raise InputError("give --inventory INVENTORY (optionally with --plan) or a GUID YAML")
    if guids is not None:
        text = _guid_yaml(guids)
    else:
        assert inventory is not None
        declared = load_snapshot(inventory).inventory
        ports = tenant_ports(
            declared, network, _plan_node_tenants(plan) if plan is not None else None
        )
        for line in ports.skipped:
            sys.stderr.write(f"note: {line}\n")
        text = emit_partitions(ports.tenants)
    emit(text, out)
    if out is not None:
        sys.stderr.write(f"wrote {out}\n")
