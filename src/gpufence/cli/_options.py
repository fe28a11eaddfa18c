"""The options every command shares, defined once so that commands cannot drift (docs/cli.md).

The grammar:

- ``-o/--output FILE``: the report (findings, summary, verdict) goes here instead of stdout.
- ``--out PATH``: evidence or generated artifacts go here (a file, or a directory where noted).
- ``-f/--format``: the report format; ``text`` by default, ``json`` everywhere.
- the inventory: positional ``INVENTORY`` where it is the command's main input (audit, plan,
  fabric check), ``-i/--inventory INVENTORY`` where it is secondary (scan bmc, k8s, fabric emit).
- ``--fail-on LEVEL``: one scale on every finding-producing command.
- ``--mutelist FILE``: accepted risks, on every finding-producing command.

Spellings that changed keep working for one release and print a deprecation warning on stderr.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from gpufence.model.findings import Severity

__all__ = [
    "DEPRECATED_FAIL_ON",
    "EvidenceOpt",
    "FailOn",
    "FailOnOpt",
    "InventoryArg",
    "InventoryOpt",
    "JsonFlag",
    "MutelistOpt",
    "OutputOpt",
    "ShowPassOpt",
    "TextJson",
    "deprecated",
    "format_option",
    "resolve_json",
]


def deprecated(old: str, new: str) -> None:
    """Warn on stderr that ``old`` is a deprecated spelling of ``new`` (removed next release)."""
    sys.stderr.write(
        f"gpufence: warning: {old} is deprecated and will be removed in the next release; "
        f"use {new}\n"
    )


class FailOn(StrEnum):
    """The one ``--fail-on`` scale: a severity, or ``never`` (report only)."""

    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    never = "never"

    def severity(self) -> Severity | None:
        """The severity threshold, None for ``never``."""
        return None if self is FailOn.never else Severity(self.value)

    @property
    def rank(self) -> int:
        """Higher is more severe; ``never`` ranks above everything (nothing reaches it)."""
        return {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4, "never": 99}[self.value]


DEPRECATED_FAIL_ON = {"error": FailOn.high, "warning": FailOn.medium}
"""Old ``fabric lint --fail-on`` values and what they mean on the one scale."""


def _parse_fail_on(value: str | FailOn) -> FailOn:
    """A --fail-on value on the one scale; the old lint levels still work, with a warning."""
    if isinstance(value, FailOn):
        return value
    text = value.strip().lower()
    if text in DEPRECATED_FAIL_ON:
        new = DEPRECATED_FAIL_ON[text]
        deprecated(f"--fail-on {value}", f"--fail-on {new.value}")
        return new
    try:
        return FailOn(text)
    except ValueError:
        choices = ", ".join(level.value for level in FailOn)
        raise typer.BadParameter(f"{value!r} is not one of {choices}") from None


class TextJson(StrEnum):
    """Report formats of commands whose report has no SARIF/JUnit form."""

    text = "text"
    json = "json"


def format_option(help: str = "Report format.") -> Any:
    """``-f/--format``: the report format (the choices come from the parameter's enum)."""
    return typer.Option("--format", "-f", help=help)


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        dir_okay=False,
        help="Write the report to FILE instead of stdout.",
    ),
]
FailOnOpt = Annotated[
    FailOn,
    typer.Option(
        "--fail-on",
        parser=_parse_fail_on,
        metavar="<" + "|".join(level.value for level in FailOn) + ">",
        help="Exit 1 when a FAIL at or above this severity exists ('never': report only).",
    ),
]
MutelistOpt = Annotated[
    Path | None,
    typer.Option(
        "--mutelist",
        metavar="FILE",
        dir_okay=False,
        help="YAML of accepted risks (control, resource, reason, expires); docs/mutelist.md.",
    ),
]
ShowPassOpt = Annotated[
    bool, typer.Option("--show-pass", help="List PASS findings in text output.")
]
InventoryArg = Annotated[
    Path, typer.Argument(metavar="INVENTORY", dir_okay=False, help="Inventory YAML file.")
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        metavar="INVENTORY",
        dir_okay=False,
        help="Inventory YAML file.",
    ),
]
EvidenceOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--evidence",
        "-e",
        metavar="PATH",
        help="Evidence file or directory (repeatable).",
    ),
]
JsonFlag = Annotated[
    bool, typer.Option("--json", hidden=True, help="Deprecated: use --format json.")
]


def resolve_json(as_json: bool, fmt: TextJson) -> TextJson:
    """The format to use given the deprecated ``--json`` flag (warns when it was given)."""
    if not as_json:
        return fmt
    deprecated("--json", "--format json")
    return TextJson.json
