"""`gpufence k8s`: Kubernetes GPU-tenancy checks: scan, policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpufence.cli._app import sub_app
from gpufence.cli._options import (
    FailOn,
    FailOnOpt,
    InventoryOpt,
    MutelistOpt,
    OutputOpt,
    ShowPassOpt,
    deprecated,
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
    emit,
    muted,
    report_findings,
)
from gpufence.collect.kubernetes import ClusterState, cluster_evidence, load_manifests
from gpufence.collect.kubernetes.live import load_live
from gpufence.controls.k8s import scan_cluster
from gpufence.errors import InputError
from gpufence.kubernetes.policies import TenantNamespace, write_policies
from gpufence.kubernetes.view import K8sView
from gpufence.load.inventory import load_inventory
from gpufence.report import OutputFormat

app = sub_app("Kubernetes GPU-tenancy checks and admission policies.")


def _inventory_tenants(inventory: Path | None) -> dict[str, str]:
    if inventory is None:
        return {}
    parsed, _ = load_inventory(inventory)
    return {t.name: t.data_sensitivity.value for t in parsed.tenants}


def _read(
    paths: list[Path] | None, live: bool, kubeconfig: str | None, context: str | None
) -> ClusterState:
    if live and paths:
        raise InputError("give manifest paths or --live, not both")
    if live:
        return load_live(kubeconfig, context)
    if not paths:
        raise InputError("give manifest files/directories, or --live for the current cluster")
    return load_manifests(paths)


@app.command("scan")
def scan_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Manifest files or directories (YAML, multi-document, Helm output).",
        ),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Read the cluster of the current kubeconfig context.")
    ] = False,
    kubeconfig: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="Kubeconfig file for --live (default: $KUBECONFIG)."),
    ] = None,
    context: Annotated[
        str | None, typer.Option(metavar="NAME", help="Kubeconfig context for --live.")
    ] = None,
    inventory: InventoryOpt = None,
    fail_on: FailOnOpt = FailOn.low,
    fmt: Annotated[OutputFormat, format_option()] = OutputFormat.text,
    output: OutputOpt = None,
    show_pass: ShowPassOpt = False,
    mutelist: MutelistOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            dir_okay=False,
            help="Also write what was read as evidence for `gpufence audit`.",
        ),
    ] = None,
    require_evidence: Annotated[
        bool,
        typer.Option(
            "--require-evidence",
            help="Exit 1 when the verdict is INCOMPLETE (controls not evaluated).",
        ),
    ] = False,
    evidence_out: Annotated[
        Path | None, typer.Option("--evidence-out", hidden=True, help="Deprecated: use --out.")
    ] = None,
    store: StoreOption = None,
    baseline: BaselineOption = None,
    severity: SeverityOption = None,
    status: StatusOption = None,
    quiet: QuietOption = False,
    hide_muted: HideMutedOption = False,
) -> None:
    """Check Kubernetes GPU tenancy (sharing, privileged pods, policies) in manifests or live."""
    started = Started.now()
    if evidence_out is not None:
        deprecated("--evidence-out", "--out")
        out = out or evidence_out
    state = _read(paths, live, kubeconfig, context)
    result = scan_cluster(state, _inventory_tenants(inventory))
    for note in state.notes:
        sys.stderr.write(f"note: {note}\n")
    for kind, reason in sorted(state.unreadable.items()):
        sys.stderr.write(f"warning: could not read {kind}: {reason}\n")
    if out is not None:
        doc = cluster_evidence(state)
        emit(json.dumps(doc.model_dump(mode="json", by_alias=True)) + "\n", out)
    result = muted(result, mutelist)
    triage = Triage(
        show_pass=show_pass,
        severity=severity,
        status=status,
        quiet=quiet,
        hide_muted=hide_muted,
        store=store,
        baseline=baseline,
        command="k8s scan",
        require_evidence=require_evidence,
        started=started,
    )
    raise typer.Exit(report_findings(result, fmt, output, fail_on.severity(), triage=triage))


@app.command("policies")
def policies_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Directory to write manifests into (required)."),
    ] = None,
    legacy_out: Annotated[
        Path | None, typer.Option("-o", hidden=True, help="Deprecated: use --out.")
    ] = None,
    from_paths: Annotated[
        list[Path] | None,
        typer.Option(
            "--from", metavar="PATH", help="Manifests whose labelled namespaces are the tenants."
        ),
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            "-i",
            metavar="INVENTORY",
            dir_okay=False,
            help="Inventory: each tenant gets a namespace of its name.",
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            metavar="NAME[=TENANT]",
            help="Tenant namespace NAME or NAME=TENANT (repeatable).",
        ),
    ] = None,
    gpu_quota: Annotated[
        int | None,
        typer.Option(
            min=0, metavar="N", help="GPUs (and MIG instances) each tenant namespace may request."
        ),
    ] = None,
    signature_issuer: Annotated[
        str | None,
        typer.Option(metavar="URL", help="OIDC issuer of the image signers (keyless Sigstore)."),
    ] = None,
    signature_subject: Annotated[
        str | None,
        typer.Option(metavar="IDENTITY", help="Signer identity (e.g. a CI workflow URL)."),
    ] = None,
) -> None:
    """Write admission policies (ValidatingAdmissionPolicy + Kyverno) and tenant manifests."""
    if legacy_out is not None:
        deprecated("k8s policies -o", "--out")
        out = out or legacy_out
    if out is None:
        raise InputError("give --out DIR: the directory to write the manifests into")
    tenants = _inventory_tenants(inventory)
    found: dict[str, TenantNamespace] = {
        name: TenantNamespace(name, name, sensitivity) for name, sensitivity in tenants.items()
    }
    if from_paths:
        view = K8sView(load_manifests(from_paths), tenants)
        for ns in view.tenant_namespaces:
            used = sorted(
                set().union(*(p.gpu_resources for p in view.pods_by_namespace.get(ns.name, ())))
            )
            found[ns.name] = TenantNamespace(
                ns.name, str(view.tenant_of(ns.name)), view.sensitivity(ns.name), tuple(used)
            )
    for item in namespace or []:
        name, _, tenant = item.partition("=")
        found[name] = TenantNamespace(name, tenant or name, tenants.get(tenant or name))
    written = write_policies(
        out,
        sorted(found.values(), key=lambda n: n.name),
        gpu_quota=gpu_quota,
        signature_issuer=signature_issuer,
        signature_subject=signature_subject,
    )
    for path in written.values():
        sys.stderr.write(f"wrote {path}\n")
    if found and gpu_quota is None:
        sys.stderr.write("note: no --gpu-quota: tenant namespaces get no ResourceQuota (K8S-008)\n")
    if signature_issuer is None:
        sys.stderr.write(
            "note: no --signature-issuer/--signature-subject: no image-signature policy (K8S-009)\n"
        )
