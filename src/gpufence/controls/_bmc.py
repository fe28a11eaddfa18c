"""Reading BMC scan evidence (``bmc.*`` facts of ``bmc/<name>`` subjects) for the controls."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from gpufence.controls._common import CLUSTER, not_applicable
from gpufence.controls.engine import Outcome
from gpufence.model.findings import Severity, Status
from gpufence.model.observed_bmc import ObservedBmc, ProtocolState
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
    "read_bmc",
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
    """One ``bmc.*`` fact from the newest BMC evidence that has it, or why it is unknown.

    ``value`` is the JSON value as the evidence (or the inventory) gave it, for the finding's
    evidence; controls judge the typed :class:`ObservedBmc` that :func:`read_bmc` makes of it.
    """

    value: object
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


def read_bmc(
    snap: Snapshot,
    resource: str,
    facts: tuple[str, ...],
    merged: Mapping[str, Fact[object]] | None = None,
) -> tuple[ObservedBmc, dict[str, Observed]]:
    """The ``facts`` of one BMC typed (:meth:`ObservedBmc.read`), and each as :func:`bmc_fact`
    found it.

    A fact whose value has the wrong shape is unknown, named with its origin and the problem:
    a control never judges a value it had to guess at.
    """
    got = {fact: bmc_fact(snap, resource, fact, merged) for fact in facts}
    reading = ObservedBmc.read({fact: o.value for fact, o in got.items() if o.known})
    for fact, why in reading.unreadable.items():
        got[fact] = Observed(None, False, f"unparseable {fact} in {got[fact].origin}: {why}")
    return reading.facts, got


@dataclass(frozen=True)
class Verdict:
    """A judge's answer for one BMC: status, message and an optional severity override."""

    status: Status
    message: str
    severity: Severity | None = None


Judge = Callable[[ObservedBmc], Verdict | None]


def per_bmc(snap: Snapshot, what: str, facts: tuple[str, ...], judge: Judge) -> Iterator[Outcome]:
    """Judge each BMC on the ``facts`` its scan observed (or the inventory declares).

    ``judge`` gets the facts typed (one not known is None) and returns a verdict, or None when
    they do not suffice; the finding is then NOT_EVALUATED and names why each needed fact is
    unknown. When no BMC has
    been scanned and nothing is known, one cluster finding says so instead of one per BMC.
    """
    if (missing := no_bmcs(snap)) is not None:
        yield missing
        return
    if _nothing_known(snap, facts):
        # Decided before the per-BMC loop: on a fleet nobody scanned, the loop would build one
        # NOT_EVALUATED per BMC only to replace them all with this single finding.
        yield unscanned_fleet(snap, what)
        return
    outcomes: list[Outcome] = []
    for view in snap.bmcs:
        typed, got = read_bmc(snap, view.resource, facts, view.facts)
        verdict = judge(typed) if any(o.known for o in got.values()) else None
        evidence: dict[str, object] = {
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
    unscanned = not snap.any_bmc_evidence
    if unscanned and all(
        o.status is Status.NOT_EVALUATED and len(o.evidence) == 1 for o in outcomes
    ):
        yield unscanned_fleet(snap, what)
        return
    yield from outcomes


def _nothing_known(snap: Snapshot, facts: tuple[str, ...]) -> bool:
    """No BMC has scan evidence and the inventory declares none of ``facts`` for any BMC.

    Then :func:`bmc_fact` finds every fact unknown on every BMC (it reads only the merged
    inventory facts and the evidence), so each BMC would be NOT_EVALUATED for the same reason.
    """
    if snap.any_bmc_evidence:
        return False
    known = snap.bmc_facts_known
    return not any(fact.removeprefix("bmc.") in known for fact in facts)


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
    """A FAIL verdict (``severity`` overrides the control's)."""
    return Verdict(Status.FAIL, message, severity)


def passing(message: str) -> Verdict:
    """A PASS verdict."""
    return Verdict(Status.PASS, message)


def is_enabled(protocols: Mapping[str, ProtocolState] | None, name: str) -> bool:
    """Whether the BMC reports the service ``name`` as enabled (unreported: no)."""
    entry = protocols.get(name) if protocols is not None else None
    return entry is not None and entry.enabled is True
