"""`gpufence attest verify-cvm`: verify an AMD SEV-SNP report or an Intel TDX quote offline."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gpufence.cli._options import TextJson, format_option
from gpufence.cli._output import emit
from gpufence.cli._time import parse_at as _parse_at
from gpufence.errors import InputError, SourceLocation

if TYPE_CHECKING:
    from gpufence.attest.cvm.snp_report import TcbVersion


class CvmKindOption(StrEnum):
    sev_snp = "sev-snp"
    tdx = "tdx"


def _hex(value: str, option: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InputError(f"{option} {value!r} is not hex") from None
    if len(raw) != size:
        raise InputError(f"{option} is {len(raw)} bytes, expected {size} ({2 * size} hex digits)")
    return raw


def _rtmrs(values: list[str]) -> dict[int, frozenset[bytes]]:
    found: dict[int, set[bytes]] = {}
    for item in values:
        index, sep, value = item.partition("=")
        if not sep or index not in {"0", "1", "2", "3"}:
            raise InputError(f"--rtmr {item!r}: expected N=HEX with N in 0..3")
        found.setdefault(int(index), set()).add(_hex(value, f"--rtmr {index}", 48))
    return {k: frozenset(v) for k, v in found.items()}


def _min_tcb(value: str) -> TcbVersion:
    from gpufence.attest.cvm.snp_report import TcbVersion

    parts = value.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and int(p) < 256 for p in parts):
        raise InputError(f"--min-tcb {value!r}: expected four SPLs 0..255, e.g. 3,0,8,115")
    bl, tee, snp, ucode = (int(p) for p in parts)
    return TcbVersion.from_u64(int.from_bytes(bytes([bl, tee, 0, 0, 0, 0, snp, ucode]), "little"))


def verify_cvm_command(
    kind: Annotated[CvmKindOption, typer.Option(help="sev-snp or tdx.")],
    report: Annotated[
        Path, typer.Option(metavar="FILE", help="SNP report or TDX quote (binary or hex).")
    ],
    certs: Annotated[
        list[Path] | None,
        typer.Option(
            "--certs", metavar="FILE", help="SNP: VCEK and ASK/ARK (PEM or DER); repeatable."
        ),
    ] = None,
    collateral: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="TDX: directory with tcb_info.json, qe_identity.json, tcb_signing_chain.pem.",
        ),
    ] = None,
    report_data: Annotated[
        str | None, typer.Option(metavar="HEX", help="Expected report data, 128 hex digits.")
    ] = None,
    measurement: Annotated[
        list[str] | None,
        typer.Option(
            metavar="HEX", help="Allowed SNP MEASUREMENT or TDX MRTD (96 hex digits); repeatable."
        ),
    ] = None,
    rtmr: Annotated[
        list[str] | None,
        typer.Option(metavar="N=HEX", help="TDX: allowed RTMR value, N=HEX; repeatable."),
    ] = None,
    product: Annotated[
        str | None, typer.Option(metavar="PRODUCT", help="SNP: Milan or Genoa.")
    ] = None,
    min_tcb: Annotated[
        str | None,
        typer.Option(
            metavar="SPLS", help="SNP: minimum reported TCB as BOOTLOADER,TEE,SNP,MICROCODE SPLs."
        ),
    ] = None,
    allow_debug: Annotated[
        bool, typer.Option("--allow-debug", help="Accept a guest whose policy allows debugging.")
    ] = False,
    allow_migration_agent: Annotated[
        bool,
        typer.Option(
            "--allow-migration-agent", help="SNP: accept a guest bound to a migration agent."
        ),
    ] = False,
    no_smt: Annotated[bool, typer.Option("--no-smt", help="SNP: refuse hosts with SMT on.")] = (
        False
    ),
    waive: Annotated[
        list[str] | None,
        typer.Option(
            metavar="STEP", help="Accept this not-evaluated step by name; repeatable, recorded."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Check validity at this ISO 8601 time (default now)."),
    ] = None,
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
) -> None:
    """Verify CPU TEE evidence offline (exit 0 pass, 1 fail or incomplete, 2 input)."""
    from gpufence.attest.cvm.inputs import load_certificates, read_evidence
    from gpufence.attest.cvm.result import check_cvm_waivers
    from gpufence.attest.cvm.snp import SnpOptions, verify_snp
    from gpufence.attest.cvm.tdx import TdxOptions, verify_tdx
    from gpufence.attest.cvm.tdx_collateral import load_collateral

    when = _parse_at(at)
    evidence = read_evidence(report)
    expected = _hex(report_data, "--report-data", 64) if report_data is not None else None
    allowed = frozenset(_hex(m, "--measurement", 48) for m in measurement) if measurement else None
    waivers = frozenset(waive or [])
    try:
        check_cvm_waivers(waivers)
    except ValueError as exc:
        raise InputError(f"--waive: {exc}") from exc
    if kind is CvmKindOption.sev_snp:
        if collateral is not None or rtmr:
            raise InputError("--collateral and --rtmr are for --kind tdx")
        if not certs:
            raise InputError("--kind sev-snp needs --certs (the VCEK and the ASK/ARK chain)")
        options = SnpOptions(
            when,
            expected_report_data=expected,
            measurements=allowed,
            product=product,
            min_tcb=_min_tcb(min_tcb) if min_tcb is not None else None,
            allow_debug=allow_debug,
            allow_migration_agent=allow_migration_agent,
            allow_smt=not no_smt,
            waivers=waivers,
        )
        result = verify_snp(evidence, load_certificates(certs), options)
    else:
        if certs or product or min_tcb or allow_migration_agent or no_smt:
            raise InputError(
                "--certs, --product, --min-tcb, --allow-migration-agent, --no-smt are SNP only"
            )
        tdx_options = TdxOptions(
            when,
            expected_report_data=expected,
            mrtds=allowed,
            rtmrs=_rtmrs(rtmr or []),
            collateral=load_collateral(collateral) if collateral else None,
            allow_debug=allow_debug,
            waivers=waivers,
        )
        result = verify_tdx(evidence, tdx_options)
    parse = result.step("evidence.parse")
    if parse is None or parse.status == "fail":
        raise InputError(
            f"not a {kind.value} {'report' if kind is CvmKindOption.sev_snp else 'quote'}: "
            f"{parse.detail if parse else 'unreadable'}",
            location=SourceLocation(report),
        )
    document = result.as_json()
    document["checked_at"] = when.isoformat()
    if fmt is TextJson.json:
        emit(json.dumps(document, indent=2) + "\n", None)
    else:
        marks = {"pass": "PASS", "fail": "FAIL", "not_evaluated": "N/E "}
        lines = [
            f"verdict: {result.verdict.upper()}  ({kind.value}, checked at {when.isoformat()})"
        ]
        for step in result.steps:
            waived = " (waived)" if step.name in result.waived else ""
            lines.append(f"  {marks[step.status]} {step.name}: {step.detail}{waived}")
        if result.verdict == "incomplete":
            lines.append(
                "note: not evaluated: "
                + ", ".join(result.unevaluated)
                + " (give the inputs, or --waive NAME to accept a gap explicitly)"
            )
        emit("\n".join(lines) + "\n", None)
    raise typer.Exit(0 if result.verdict == "pass" else 1)
