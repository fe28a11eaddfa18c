"""`gpufence collect`: Node-local collectors: GPU state from NVML or nvidia-smi output."""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import deprecated
from gpufence.collect.gpu import collect_nvml, gpu_evidence, parse_nvidia_smi
from gpufence.errors import InputError

app = sub_app("Node-local collectors: GPU state from NVML or nvidia-smi output.")


@app.callback()
def _group() -> None:
    """Node-local collectors: GPU state from NVML or nvidia-smi output."""


_NODE_NAME = re.compile(r"^[A-Za-z0-9._:-]+$")


@app.command("gpu")
def collect_gpu_command(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="PATH",
            help="Evidence file to write, required (a directory gets <node>.json).",
        ),
    ] = None,
    legacy_out: Annotated[
        Path | None, typer.Option("-o", hidden=True, help="Deprecated: use --out.")
    ] = None,
    from_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            metavar="FILE",
            help="Parse saved `nvidia-smi -q -x` or `nvidia-smi -q` output instead of NVML; "
            "repeat to add `nvidia-smi -L` / `nvidia-smi conf-compute` output.",
        ),
    ] = None,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            metavar="NAME",
            help="Node name as in the inventory (default: this host name).",
        ),
    ] = None,
) -> None:
    """Read GPU state (MIG, ECC, CC, vGPU) on this node and write evidence for `gpufence audit`."""
    if legacy_out is not None:
        deprecated("collect gpu -o", "--out")
        out = out or legacy_out
    if out is None:
        raise InputError("give --out PATH: the evidence file (or a directory for <node>.json)")
    name = node or socket.gethostname()
    if not _NODE_NAME.match(name):
        raise InputError(f"--node {name!r}: use letters, digits, '.', '_', ':' or '-'")
    report = parse_nvidia_smi(from_files) if from_files else collect_nvml()
    document = gpu_evidence(report, name)
    target = out / f"{name}.json" if out.is_dir() else out
    text = json.dumps(document.model_dump(mode="json", by_alias=True), indent=2) + "\n"
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    observed = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in document.observed.items())
    sys.stderr.write(
        f"wrote {target}: {document.subject}, {len(report.gpus)} GPU(s) via {report.collector}; "
        f"observed {observed or 'nothing'}\n"
    )
    for missing in document.not_observed:
        sys.stderr.write(f"  not observed: {missing.fact}: {missing.reason}\n")
