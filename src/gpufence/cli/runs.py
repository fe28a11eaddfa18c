"""`gpufence runs` (list, prune) and `gpufence diff`: posture over time from a findings store."""

from __future__ import annotations

import sys
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer

from gpufence.cli._app import _SETTINGS, GpufenceGroup, GpufenceTyper, sub_app
from gpufence.cli._output import DEFAULT_STORE, emit, resolve_findings
from gpufence.errors import InputError
from gpufence.model.history import ChangeKind, diff_findings
from gpufence.report.history import (
    render_diff_json,
    render_diff_text,
    render_runs_json,
    render_runs_text,
)


class ListFormat(StrEnum):
    text = "text"
    json = "json"


StoreArg = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="GPUFENCE_STORE",
        metavar="STORE",
        help="Findings store: 'default' (SQLite under $XDG_STATE_HOME/gpufence), a file path, "
        "sqlite:///PATH or postgresql://USER@HOST/DB.",
    ),
]
FormatArg = Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")]

runs_app = GpufenceTyper(
    cls=GpufenceGroup,
    help="Recorded runs of a findings store: list (default), prune.",
    **{**_SETTINGS, "no_args_is_help": False},
    invoke_without_command=True,
)
app = runs_app
diff_app = sub_app("Compare two runs by fingerprint: new, fixed, changed status or severity.")


def _list(store: str, fmt: ListFormat, limit: int | None) -> None:
    from gpufence.store import open_store

    with open_store(store) as opened:
        runs = opened.runs(limit=limit)
    emit(render_runs_json(runs) if fmt is ListFormat.json else render_runs_text(runs), None)


@runs_app.callback()
def runs_default(
    ctx: typer.Context,
    store: StoreArg = DEFAULT_STORE,
    fmt: FormatArg = ListFormat.text,
    limit: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Newest N runs only.")
    ] = None,
) -> None:
    """List recorded runs, newest first (same as `gpufence runs list`)."""
    if ctx.invoked_subcommand is None:
        _list(store, fmt, limit)


@runs_app.command("list")
def runs_list(
    store: StoreArg = DEFAULT_STORE,
    fmt: FormatArg = ListFormat.text,
    limit: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Newest N runs only.")
    ] = None,
) -> None:
    """List recorded runs, newest first: id, time, duration, command, verdict, counts, target."""
    _list(store, fmt, limit)


@runs_app.command("prune")
def runs_prune(
    store: StoreArg = DEFAULT_STORE,
    keep: Annotated[
        int | None, typer.Option(min=0, metavar="N", help="Keep the newest N runs.")
    ] = None,
    older_than: Annotated[
        float | None, typer.Option(min=0, metavar="DAYS", help="Delete runs older than DAYS days.")
    ] = None,
) -> None:
    """Delete old runs and their findings (retention)."""
    if keep is None and older_than is None:
        raise InputError("give --keep N and/or --older-than DAYS")
    from gpufence.store import open_store

    with open_store(store) as opened:
        removed = opened.prune(
            keep=keep, older_than=timedelta(days=older_than) if older_than is not None else None
        )
        left = len(opened.runs())
    sys.stderr.write(f"pruned {len(removed)} run(s); {left} left in {opened.url}\n")


@diff_app.command("diff")
def diff_command(
    run_a: Annotated[
        str | None,
        typer.Argument(
            metavar="BASE", help="Base: run id, 'latest~N', or a JSON report (default: latest~1)."
        ),
    ] = None,
    run_b: Annotated[
        str | None,
        typer.Argument(
            metavar="HEAD", help="Head: run id, 'latest', or a JSON report (default: latest)."
        ),
    ] = None,
    store: StoreArg = DEFAULT_STORE,
    fmt: FormatArg = ListFormat.text,
    show_still_open: Annotated[
        bool, typer.Option(help="Text output: also list findings still open and unchanged.")
    ] = False,
    fail_on_new: Annotated[
        bool, typer.Option(help="Exit 1 when the head has new open findings.")
    ] = False,
) -> None:
    """Compare two runs by fingerprint: new, fixed, changed status or severity, still open."""
    if run_a is not None and run_b is None:
        run_a, run_b = run_a, "latest"
    base_label, base = resolve_findings(run_a or "latest~1", store)
    head_label, head = resolve_findings(run_b or "latest", store)
    diff = diff_findings(base, head, base=base_label, head=head_label)
    if fmt is ListFormat.json:
        emit(render_diff_json(diff), None)
    else:
        emit(render_diff_text(diff, show_still_open=show_still_open), None)
    raise typer.Exit(1 if fail_on_new and diff.of_kind(ChangeKind.NEW) else 0)
