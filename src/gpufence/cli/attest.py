"""`gpufence attest`: Verify NVIDIA GPU/NVSwitch attestation evidence offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import OutputOpt, TextJson, format_option
from gpufence.cli._output import emit
from gpufence.cli._time import parse_at as _parse_at
from gpufence.cli.attest_cvm import verify_cvm_command
from gpufence.errors import InputError

app = sub_app("Verify NVIDIA GPU/NVSwitch attestation evidence offline.")


@app.callback()
def _group() -> None:
    """Verify NVIDIA GPU/NVSwitch attestation evidence offline."""


def _parse_nonce(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        nonce = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InputError(f"--nonce {value!r} is not hex") from None
    if len(nonce) != 32:
        raise InputError(
            f"--nonce is {len(nonce)} bytes; an SPDM nonce is 32 bytes (64 hex digits)"
        )
    return nonce


@app.command("verify")
def verify_command(
    report: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Attestation report, hex text.")
    ] = None,
    certs: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Device certificate chain, PEM.")
    ] = None,
    evidence: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="NVIDIA serialized evidence JSON (one or many devices)."),
    ] = None,
    rim: Annotated[
        list[Path] | None,
        typer.Option("--rim", metavar="FILE", help="Reference manifest (SWID XML); repeatable."),
    ] = None,
    nonce: Annotated[
        str | None, typer.Option(metavar="HEX", help="Expected nonce, 64 hex digits.")
    ] = None,
    waive: Annotated[
        list[str] | None,
        typer.Option(
            "--waive",
            help="Accept this unchecked step by name (e.g. revocation, 'rim.*.revocation', "
            "nonce); repeatable. Without it a skipped step makes the verdict INCOMPLETE.",
            metavar="STEP",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="TIME", help="Check certificate validity at this ISO 8601 time (default now)."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Appraisal policy YAML; the verdict also needs its approval."
        ),
    ] = None,
    online: Annotated[
        bool, typer.Option("--online", help="Check revocation with OCSP (network; nonce'd).")
    ] = False,
    ocsp_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="OCSP responder (default: from the certificates)."),
    ] = None,
    fmt: Annotated[TextJson, format_option()] = TextJson.text,
    output: OutputOpt = None,
) -> None:
    """Verify evidence offline against the pinned NVIDIA roots.

    Exit 0 pass, 1 fail or incomplete (a step was not checked and not waived), 2 bad input.
    """
    from gpufence.attest.claims import result_json
    from gpufence.attest.device_reports import load_evidence_file, load_report_pair
    from gpufence.attest.ocsp import OcspChecker, httpx_fetch
    from gpufence.attest.policy import evaluate, load_policy
    from gpufence.attest.rim import RimError, check_rim
    from gpufence.attest.verify import VerifyOptions, check_waivers, verify_set

    if evidence is not None and (report is not None or certs is not None):
        raise InputError("give either --evidence, or --report with --certs, not both")
    if evidence is None and (report is None or certs is None):
        raise InputError("give --report FILE --certs FILE, or --evidence FILE")
    when = _parse_at(at)
    devices = load_evidence_file(evidence) if evidence else load_report_pair(report, certs)  # type: ignore[arg-type]
    devices = devices if isinstance(devices, list) else [devices]
    checks = []
    for path in rim or []:
        try:
            checks.append(check_rim(path.read_bytes(), when, source=str(path)))
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
        except RimError as exc:
            raise InputError(f"{path}: {exc}") from exc
    appraisal = load_policy(policy) if policy else None
    waivers = list(waive or [])
    try:
        check_waivers(waivers)
    except ValueError as exc:
        raise InputError(f"--waive: {exc}") from exc
    if appraisal is not None:
        waivers += [w for w in appraisal.accept_not_evaluated if w not in waivers]
    revocation = OcspChecker(httpx_fetch(), url=ocsp_url) if online else None
    result = verify_set(devices, VerifyOptions(when, _parse_nonce(nonce), revocation), checks)
    document = result_json(result, waivers)
    verdict = result.judge(waivers)
    if appraisal is not None:
        decision = evaluate(appraisal, result)
        document["policy"] = json.loads(decision.model_dump_json())
        if not decision.allowed and verdict == "pass":
            verdict = "fail"
    document["verdict"] = verdict
    document["checked_at"] = when.isoformat()
    if fmt is TextJson.json:
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = _text(document)
    emit(text, output)
    if output is not None:
        sys.stderr.write(f"wrote {fmt.value} result to {output} (verdict: {verdict})\n")
    raise typer.Exit(0 if verdict == "pass" else 1)


def _text(document: dict[str, Any]) -> str:
    marks = {"pass": "PASS", "fail": "FAIL", "not_evaluated": "N/E "}
    waived = set(document.get("waived_steps") or [])
    lines = [
        f"verdict: {str(document['verdict']).upper()}  "
        f"(certificates checked at {document['checked_at']})"
    ]
    lines += [
        f"  set  {marks[s['status']]} {s['name']}: {s['detail']}"
        + (" (waived)" if f"set:{s['name']}" in waived else "")
        for s in document["set_steps"]
    ]
    unchecked = False
    for device in document["devices"]:
        lines.append(f"{device['name']} ({device['kind']}): {device['verdict'].upper()}")
        lines += [
            f"  {marks[s['status']]} {s['name']}: {s['detail']}"
            + (" (waived)" if f"{device['name']}:{s['name']}" in waived else "")
            for s in device["steps"]
        ]
        unchecked |= any(
            s["name"].endswith("revocation") and s["status"] == "not_evaluated"
            for s in device["steps"]
        )
    decision = document.get("policy")
    if isinstance(decision, dict):
        state = "allowed" if decision["allowed"] else "DENIED"
        lines.append(f"policy {decision['policy_id']} v{decision['policy_version']}: {state}")
        lines += [f"  {r['code']}: {r['detail']}" for r in decision["reasons"]]
    if unchecked:
        lines.append("note: revocation not checked (offline); use --online to ask OCSP responders")
    if document["verdict"] == "incomplete":
        lines.append(
            "INCOMPLETE: steps marked N/E were not checked; give what they need (--nonce, --rim, "
            "--online) or waive them by name (--waive STEP, or the policy's accept_not_evaluated)"
        )
    return "\n".join(lines) + "\n"


# `attest verify-cvm` lives in its own module (the CPU TEE verifiers); registered here.
app.command("verify-cvm")(verify_cvm_command)
