"""Fabric evidence: each subnet's partitions.conf, and what the subnet manager programmed.

- (Each network's ``partitions_conf`` is read by the loading stage: :mod:`gpufence.load.fabric`.)
- :func:`observe_files` turns saved infiniband-diags output into one document (subject
  ``fabric/<network>``); :func:`observe_live` runs the tools (``ibnetdiscover``, ``sminfo``,
  ``smpquery pkeys`` per end port) against the local subnet. ``gpufence fabric observe`` writes the
  document as an evidence file for ``gpufence audit --evidence``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from gpufence.collect import CollectorInfo
from gpufence.errors import InputError, SourceLocation
from gpufence.fabric.observed import (
    ObservedFabric,
    Topology,
    TopologyPort,
    observed_fabric,
    parse_guid2lid,
    parse_ibnetdiscover,
    parse_pathrecords,
    parse_pkey_dump,
    parse_sminfo,
)
from gpufence.fabric.records import OBSERVED_COLLECTOR
from gpufence.model.evidence import CollectorName, EvidenceDocument, Unobserved
from gpufence.model.snapshot import Pointer, Snapshot

__all__ = [
    "observe_files",
    "observe_live",
    "read_pkey_tables",
]

COLLECTOR = CollectorInfo(
    CollectorName.INFINIBAND_DIAGS, __name__, "fabric/<network>", "fabric observe"
)
"""This module's collector (found by :func:`gpufence.collect.collectors`)."""


def _where(snap: Snapshot, pointer: Pointer) -> SourceLocation:
    loc = snap.location(pointer)
    return SourceLocation(loc.file, loc.line, loc.column)


def _now() -> datetime:
    return datetime.now(UTC)


def _observed_document(
    network: str, fabric: ObservedFabric, missing: Sequence[Unobserved], sources: Sequence[str]
) -> EvidenceDocument:
    read = sum(1 for p in fabric.ports if p.pkeys is not None)
    observed: dict[str, object] = {
        "fabric.ports": len(fabric.ports),
        "fabric.pkey_tables_read": read,
    }
    if fabric.sm_guid is not None:
        observed["fabric.sm_guid"] = fabric.sm_guid
    return EvidenceDocument.new(
        subject=f"fabric/{network}",
        collector=OBSERVED_COLLECTOR,
        observed=observed,
        not_observed=missing,
        raw={"subnet": fabric.model_dump(mode="json"), "sources": list(sources)},
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def observe_files(
    network: str,
    *,
    ibnetdiscover: Path,
    pkeys: Path,
    sminfo: Path | None = None,
    pathrecords: Path | None = None,
    guid2lid: Path | None = None,
) -> EvidenceDocument:
    """Evidence from saved tool output (formats: :mod:`gpufence.fabric.observed`)."""
    topology = parse_ibnetdiscover(_read(ibnetdiscover), str(ibnetdiscover))
    dump = parse_pkey_dump(_read(pkeys), str(pkeys))
    sm = parse_sminfo(_read(sminfo)) if sminfo else None
    missing = []
    if sminfo is None or sm is None:
        missing.append(
            Unobserved(fact="fabric.sm_guid", reason="no sminfo output given or it named no SM")
        )
    fabric = observed_fabric(
        topology,
        dump,
        sm=sm,
        paths=parse_pathrecords(_read(pathrecords)) if pathrecords else (),
        guid2lid=parse_guid2lid(_read(guid2lid)) if guid2lid else None,
    )
    sources = [str(p) for p in (ibnetdiscover, pkeys, sminfo, pathrecords, guid2lid) if p]
    return _observed_document(network, fabric, missing, sources)


def _run(argv: Sequence[str], env: Mapping[str, str] | None, timeout: float) -> str:
    tool = shutil.which(argv[0], path=(env or os.environ).get("PATH"))
    if tool is None:
        raise InputError(
            f"{argv[0]} not found on PATH",
            hint="install the Debian package infiniband-diags (and run where the subnet is)",
        )
    try:
        done = subprocess.run(  # noqa: S603 - fixed tool names, no shell
            [tool, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"{argv[0]} timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        raise InputError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def observe_live(
    network: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    parallel: int = 4,
) -> EvidenceDocument:
    """Run infiniband-diags against the local subnet and return its evidence document."""
    topology = parse_ibnetdiscover(_run(["ibnetdiscover"], env, timeout), "ibnetdiscover")
    missing: list[Unobserved] = []
    try:
        sm = parse_sminfo(_run(["sminfo"], env, timeout))
    except InputError as exc:
        sm = None
        missing.append(Unobserved(fact="fabric.sm_guid", reason=exc.message))
    dump, unread = read_pkey_tables(topology, env=env, timeout=timeout, parallel=parallel)
    missing.extend(unread)
    fabric = observed_fabric(topology, dump, sm=sm)
    return _observed_document(network, fabric, missing, ["ibnetdiscover", "sminfo", "smpquery"])


def read_pkey_tables(
    topology: Topology,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    parallel: int = 4,
) -> tuple[dict[tuple[int, int], list[int]], list[Unobserved]]:
    """``smpquery pkeys LID PORT`` for every end port: (LID, port) -> entries, and failures."""
    missing: list[Unobserved] = []
    dump: dict[tuple[int, int], list[int]] = {}
    readable = []
    for port in topology.ports:
        if port.lid is None:
            missing.append(
                Unobserved(fact=f"fabric.pkeys.0x{port.guid:016x}", reason="port has no LID")
            )
        else:
            readable.append(port)

    def query(port: TopologyPort) -> tuple[TopologyPort, str | InputError]:
        argv = ["smpquery", "pkeys", str(port.lid), str(port.port)]
        try:
            return port, f"# smpquery pkeys {port.lid} {port.port}\n" + _run(argv, env, timeout)
        except InputError as exc:
            return port, exc

    # One smpquery per port (multi-record SA queries need RMPP, which ibsim lacks); a few in
    # parallel, as each call mostly waits.
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(readable) or 1))) as pool:
        for port, result in pool.map(query, readable):
            if isinstance(result, InputError):
                missing.append(
                    Unobserved(fact=f"fabric.pkeys.0x{port.guid:016x}", reason=result.message)
                )
            else:
                dump.update(parse_pkey_dump(result))
    return dump, missing
