"""`gpufence catalog`: the silicon capability table, or one GPU."""

from __future__ import annotations

import io
import json
from typing import Annotated

import typer
from rich.console import Console

from gpufence.catalog import load_catalog
from gpufence.catalog.render import catalog_table
from gpufence.cli._app import sub_app
from gpufence.cli._options import JsonFlag, OutputOpt, TextJson, format_option, resolve_json
from gpufence.cli._output import emit

__all__ = ["app", "catalog_command"]

app = sub_app("Print the GPU capability table, or one model's row.")


@app.command("catalog")
def catalog_command(
    model: Annotated[
        str | None,
        typer.Argument(
            metavar="MODEL",
            help="A model name, alias or PCI device ID (e.g. 'H100-SXM5-80GB', 0x2330); "
            "an ambiguous name lists its variants (exit 2).",
        ),
    ] = None,
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    output: OutputOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the GPU capability table, or one model's row."""
    fmt = resolve_json(as_json, fmt)
    catalog = load_catalog()
    rows = [catalog.lookup(model)] if model is not None else list(catalog.models)
    if fmt is TextJson.json:
        docs = [m.public_dict() for m in rows]
        emit(json.dumps(docs[0] if model is not None else docs, indent=2) + "\n", output)
        return
    if output is None:
        Console(soft_wrap=False, width=max(140, Console().width)).print(
            catalog_table(catalog, rows)
        )
        return
    buffer = io.StringIO()
    Console(file=buffer, soft_wrap=False, width=140).print(catalog_table(catalog, rows))
    emit(buffer.getvalue(), output)
