"""Auditing a fleet's BMC evidence a batch of BMCs at a time (pure: no I/O).

`gpufence scan bmc` of 10,000 BMCs kept ~44 KB of facts per BMC for the audit at the end, held
at once (~440 MB) on top of its findings. Most controls judge each resource on its own facts, so
they can run over one batch of BMCs and their evidence at a time; the few that compare resources
(:attr:`Control.peer_facts`, e.g. FW-003's firmware between servers of one model) run once, first,
over every BMC's evidence cut down to the facts they compare. The findings are the same as
one audit of the whole snapshot (tests/controls/test_batches.py checks it on random fleets and
batchings, which is also what holds every control to its ``peer_facts`` declaration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from gpufence import __version__
from gpufence._gc import fewer_collections
from gpufence.controls.engine import Control, evaluate_controls, one_finding_per_cause
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import AuditResult, FindingTable
from gpufence.model.snapshot import Snapshot

__all__ = ["audit_in_batches"]

Documents = Sequence[tuple[EvidenceDocument, str]]
"""Evidence documents, each with the file it came from."""


def audit_in_batches(
    batches: Callable[[], Iterable[Snapshot]],
    whole: Callable[[Documents], Snapshot],
    controls: Iterable[Control],
    inputs: Sequence[str] = (),
) -> AuditResult:
    """The audit of a fleet given as batches, holding one batch at a time.

    ``batches()`` yields snapshots of some of the fleet's BMCs with their evidence (and no other
    evidence): :meth:`Snapshot.scoped` views of an inventory, the first one with the nodes that
    have no BMC, or snapshots of the BMCs alone. Every BMC is in exactly one batch and has at
    least one document (`scan bmc` writes one for every target, reached or not).

    The controls with :attr:`Control.peer_facts` run first, once, on ``whole(documents)``: the
    snapshot of every BMC with every batch's documents cut down to those facts (``batches()`` is
    called twice then). The other controls run batch by batch: a batch decides the findings
    about its own BMCs and the nodes they manage, the first batch those about no BMC (the
    cluster, nodes without one). The findings are those of one audit of the whole fleet
    with all its evidence, in control order like :func:`gpufence.controls.audit_snapshot`'s;
    within a control, batch by batch.
    """
    selected = tuple(controls)
    own = [c for c in selected if not c.peer_facts]
    peer = [c for c in selected if c.peer_facts]
    found: dict[str, FindingTable] = {}  # each control's findings so far
    source_file: str | None = None
    if peer:
        # First, while no other finding is held: the peer pass needs every BMC at once.
        wanted = frozenset(f for c in peer for f in c.peer_facts)
        cut_down = [(_only(d, wanted), origin) for snap in batches() for d, origin in _docs(snap)]
        fleet = whole(cut_down)
        del cut_down
        source_file = fleet.source_file
        _keep(found, fleet, peer, _everything)
        del fleet
    seen: set[str] = set()
    for number, snap in enumerate(batches() if own else ()):
        source_file = snap.source_file
        bmcs = {view.bmc.name for view in snap.bmcs}
        if again := sorted(bmcs & seen):
            raise ValueError(f"bmc/{again[0]} is in two batches; each BMC belongs to one")
        seen |= bmcs
        if stray := sorted({d.subject for d in snap.evidence} - {f"bmc/{b}" for b in bmcs}):
            raise ValueError(f"{stray[0]}: a batch holds evidence about its own BMCs only")
        if unseen := sorted(bmcs - {doc.subject.removeprefix("bmc/") for doc in snap.evidence}):
            # A cluster finding about unscanned BMCs names them: it would differ per batch.
            raise ValueError(
                f"bmc/{unseen[0]} has no evidence; a batched audit needs some for each"
            )
        _keep(found, snap, own, _decider(snap, bmcs, first=number == 0))
    if own and not seen:
        raise ValueError("no batch: a batched audit needs at least one BMC")
    merged = FindingTable(source_file=source_file)
    for control in selected:
        table = found.pop(control.id, None)
        if table is not None:
            merged.extend_rows(table, range(len(table)))
    with fewer_collections():
        findings = one_finding_per_cause(merged)
    return AuditResult(
        findings=findings,
        controls=tuple(c.meta.info() for c in selected),
        inputs=tuple(inputs) or ((source_file,) if source_file else ()),
        tool_version=__version__,
    )


def _keep(
    found: dict[str, FindingTable],
    snap: Snapshot,
    controls: Sequence[Control],
    decides: Callable[[str], bool],
) -> None:
    """Add the findings of ``controls`` over ``snap`` whose resource ``decides`` says this
    snapshot decides, their evidence as compact text (the snapshot's documents can go)."""
    table, counts = evaluate_controls(snap, controls)
    decided = [decides(row[4]) for row in table.rows()]
    start = 0
    for control, count in zip(controls, counts, strict=True):
        if control.id not in found:
            # Same file as the snapshot's: packed declaration positions stay packed ints.
            found[control.id] = FindingTable(source_file=snap.source_file)
        _append(found[control.id], table, [p for p in range(start, start + count) if decided[p]])
        start += count


def _append(into: FindingTable, table: FindingTable, positions: Iterable[int]) -> None:
    before = len(into)
    into.extend_rows(table, positions)
    into.compact_evidence(before)


def _docs(snap: Snapshot) -> Documents:
    return [(doc, snap.evidence_origins.get(i, "evidence")) for i, doc in enumerate(snap.evidence)]


def _only(doc: EvidenceDocument, facts: frozenset[str]) -> EvidenceDocument:
    """``doc`` with only ``facts`` observed (or reported unobserved) and no collector detail."""
    return doc.model_copy(
        update={
            "observed": {k: v for k, v in doc.observed.items() if k in facts},
            "not_observed": tuple(m for m in doc.not_observed if m.fact in facts),
            "raw": {},
        }
    )


def _everything(resource: str) -> bool:
    return True


def _decider(snap: Snapshot, bmcs: set[str], *, first: bool) -> Callable[[str], bool]:
    """What a batch decides: findings about its BMCs (``bmc/X``, ``bmc/X/...``) and the nodes
    they manage; the first batch also those about no BMC (the cluster, a node without one).

    Its controls see only its BMCs and their nodes (:meth:`Snapshot.scoped`), so a finding
    about another batch's BMC does not arise; were one made, it would not count here.
    """
    managed_by = {
        node.name: node.bmc for pool in snap.inventory.node_pools for node in pool.nodes if node.bmc
    }

    def decides(resource: str) -> bool:
        kind, _, rest = resource.partition("/")
        name = rest.split("/", 1)[0]
        owner = name if kind == "bmc" else managed_by.get(name) if kind == "node" else None
        return first if not owner else owner in bmcs

    return decides
