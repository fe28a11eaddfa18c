"""Reading BMC scan evidence (``bmc.*`` facts of ``bmc/<name>`` subjects) for the controls."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gpufence.controls._common import CLUSTER, not_applicable
from gpufence.controls.engine import Outcome
from gpufence.model.findings import Severity, Status
from gpufence.model.snapshot import Fact, Snapshot

__all__ = [
    "Judge",
    "Observed",
    "Verdict",
    "bmc_fact",
    "failing",
    "is_enabled",
    "no_bmcs",
    "passing",
    "per_bmc",
    "unscanned_fleet",
]


def no_bmcs(snap: Snapshot) -> Outcome | None:
    """NOT_EVALUATED when nodes exist but no BMC is declared; None when there are BMCs."""
    if snap.bmcs:
        return None
    if snap.nodes:
        return Outcome(
            Status.NOT_EVALUATED,
            "cluster",
            f"the inventory declares no BMCs for its {len(snap.nodes)} node(s); the out-of-band "
            "plane cannot be judged",
            {"missing": "bmcs"},
            ("bmcs",),
        )
    return not_applicable("no nodes and no BMCs in the inventory")


@dataclass(frozen=True)
class Observed:
    """One ``bmc.*`` fact from the newest BMC evidence that has it, or why it is unknown."""

    value: Any
    known: bool
    origin: str


def bmc_fact(
    snap: Snapshot, resource: str, fact: str, merged: Mapping[str, Fact[object]] | None = None
) -> Observed:
    """Newest scan observation of ``fact`` for ``resource``, or why it is unknown.

    ``merged`` is the BMC view's facts: for the inventory's own BMC fields (vendor,
    firmware_version, shared_nic, ...) the snapshot has already merged declaration and
    observation, and that merged fact is used.
    """
    name = fact.removeprefix("bmc.")
    if merged is not None and name in merged:
        known = merged[name]
        if known.known:
            return Observed(known.value, True, f"{known.source}: {known.origin}")
        if snap.evidence_for(resource):
            return Observed(None, False, known.origin)
    seen = snap.observation(resource, fact)
    if seen is not None:
        return Observed(seen.value, seen.known, seen.origin)
    if not snap.evidence_for(resource):
        gap = snap.evidence_gap(resource)
        return Observed(
            None, False, gap or f"no BMC scan evidence for {resource} (run gpufence scan bmc)"
        )
    return Observed(None, False, f"the BMC evidence for {resource} does not report {fact}")


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str
    severity: Severity | None = None


Judge = Callable[[Mapping[str, Any]], Verdict | None]


def per_bmc(snap: Snapshot, what: str, facts: tuple[str, ...], judge: Judge) -> Iterator[Outcome]:
    """Judge each BMC on the ``facts`` its scan observed (or the inventory declares).

    ``judge`` gets the known facts and returns a verdict, or None when they do not suffice; the
    finding is then NOT_EVALUATED and names why each needed fact is unknown. When no BMC has
    been scanned and nothing is known, one cluster finding says so instead of one per BMC.
    """
    if (missing := no_bmcs(snap)) is not None:
        yield missing
        return
    outcomes: list[Outcome] = []
    for view in snap.bmcs:
        got = {fact: bmc_fact(snap, view.resource, fact, view.facts) for fact in facts}
        known = {fact: o.value for fact, o in got.items() if o.known}
        verdict = judge(known) if known else None
        evidence: dict[str, Any] = {
            fact.removeprefix("bmc."): {"value": o.value, "source": o.origin}
            for fact, o in got.items()
            if o.known
        }
        if verdict is None:
            reasons = {f.removeprefix("bmc."): o.origin for f, o in got.items() if not o.known}
            first = next(iter(reasons.values()), "the observed facts do not decide it")
            outcomes.append(
                Outcome(
                    Status.NOT_EVALUATED,
                    view.resource,
                    f"cannot judge {what}: {first}",
                    {**evidence, "missing": reasons or what},
                    view.pointer,
                )
            )
            continue
        outcomes.append(
            Outcome(
                verdict.status,
                view.resource,
                verdict.message,
                evidence,
                view.pointer,
                verdict.severity,
            )
        )
    unscanned = not any(snap.evidence_for(v.resource) for v in snap.bmcs)
    if unscanned and all(
        o.status is Status.NOT_EVALUATED and len(o.evidence) == 1 for o in outcomes
    ):
        yield unscanned_fleet(snap, what)
        return
    yield from outcomes


def unscanned_fleet(snap: Snapshot, what: str) -> Outcome:
    """One NOT_EVALUATED for the whole fleet when no BMC has scan evidence at all."""
    names = [v.bmc.name for v in snap.bmcs]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    stale = [gap for v in snap.bmcs if (gap := snap.evidence_gap(v.resource)) is not None]
    also = f"; {len(stale)} had only stale evidence, e.g. {stale[0]}" if stale else ""
    return Outcome(
        Status.NOT_EVALUATED,
        CLUSTER,
        f"cannot judge {what}: no current BMC scan evidence for {len(names)} BMC(s) ({shown}); "
        f"run gpufence scan bmc and pass its output to --evidence{also}",
        {"missing": "BMC scan evidence", "bmcs": names},
        ("bmcs",),
    )


def failing(message: str, severity: Severity | None = None) -> Verdict:
    return Verdict(Status.FAIL, message, severity)


def passing(message: str) -> Verdict:
    return Verdict(Status.PASS, message)


def is_enabled(mapping: Any, key: str) -> bool:
    entry = mapping.get(key) if isinstance(mapping, dict) else None
    return isinstance(entry, dict) and entry.get("enabled") is True
