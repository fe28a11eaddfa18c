"""The snapshot: the inventory resolved against the catalog and merged with evidence.

Controls read only this. It is immutable and does no I/O; every view it offers (nodes with their
pool, site, GPU model and tenants; effective facts with their provenance) is derived from the
validated inventory, the catalog rows and the evidence documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from gpufence._yaml import Position, position_of, unpack_position
from gpufence.catalog import GpuModel
from gpufence.model.context import AuditContext
from gpufence.model.evidence import MUST_OBSERVE, EvidenceDocument, StaleEvidence
from gpufence.model.findings import FindingLocation
from gpufence.model.inventory import (
    Bmc,
    GpuState,
    HostState,
    Inventory,
    Network,
    Node,
    NodePool,
    Site,
    Tenant,
    Workload,
)

__all__ = ["BmcView", "Fact", "NodeView", "Snapshot"]

T = TypeVar("T")

Pointer = tuple[str | int, ...]


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[object]:
    """Validator for one field of ``model`` alone (evidence carries single facts)."""
    annotation: Any = model.model_fields[name].annotation
    return TypeAdapter(annotation)


_FIRST_LINE = position_of(1, 1)


def _overlaid_at(
    pool_at: dict[str, Pointer], node_ptr: Pointer, section: str, node_part: BaseModel | None
) -> dict[str, Pointer]:
    """Where each field of a node's ``section`` is declared: the node's own pointer for the
    fields it sets, else the pool's (the pool's dict itself when the node sets none)."""
    if node_part is None or not node_part.model_fields_set:
        return pool_at
    return {
        name: (*node_ptr, section, name) if name in node_part.model_fields_set else at
        for name, at in pool_at.items()
    }


@dataclass(frozen=True, slots=True)
class Fact(Generic[T]):
    """One fact with its provenance: declared in the inventory, observed, or unknown."""

    value: T | None
    source: Literal["declared", "observed", "unknown"]
    origin: str
    """Where: 'inventory.yaml:12:7', 'evidence gpu-a01.json (nvml at 2026-...)', or why unknown."""
    pointer: Pointer | None = None
    """The inventory element that declares (or would declare) the fact."""
    declared: T | None = None
    """For an observed fact: what the inventory declared (None if it declared nothing)."""

    @property
    def known(self) -> bool:
        """Whether the fact has a value (declared or observed)."""
        return self.value is not None

    def describe(self) -> str:
        """The value with where it came from, for finding messages."""
        return f"{self.value!r} ({self.source}: {self.origin})"


class _Undeclared(Fact[object]):
    """An unknown fact that the inventory does not declare: its origin names the field and the
    subject, written when read (a 64,000-node fleet has ~450,000 of them)."""

    __slots__ = ("_field", "_subject")
    _field: str
    _subject: str

    def __init__(self, field_name: str, subject: str, pointer: Pointer) -> None:
        set_ = object.__setattr__  # frozen: set once, as the dataclass's own __init__ does
        set_(self, "value", None)
        set_(self, "source", "unknown")
        set_(self, "pointer", pointer)
        set_(self, "declared", None)
        set_(self, "_field", field_name)
        set_(self, "_subject", subject)

    @property  # read-only, like every field of a frozen Fact
    def origin(self) -> str:
        """Why the fact is unknown: '<field> not declared for <subject>'."""
        return f"{self._field} not declared for {self._subject}"


class _Declared(Fact[object]):
    """A fact the inventory declares: its origin 'file:line:column' is written when read (from
    the parser's packed (line, column); a fleet's BMCs declare ~100,000 distinct places)."""

    __slots__ = ("_at", "_file")
    _file: str
    _at: Position

    def __init__(self, value: object, file: str, at: Position, pointer: Pointer) -> None:
        set_ = object.__setattr__  # frozen: set once, as the dataclass's own __init__ does
        set_(self, "value", value)
        set_(self, "source", "declared")
        set_(self, "pointer", pointer)
        set_(self, "declared", None)
        set_(self, "_file", file)
        set_(self, "_at", at)

    @property  # read-only, like every field of a frozen Fact
    def origin(self) -> str:
        """Where the inventory declares the fact: 'file:line:column'."""
        return "{}:{}:{}".format(self._file, *unpack_position(self._at))


class _FactMap(Mapping[str, Fact[object]]):
    """The facts of one view, keyed by its model's fields: one key index per model, a tuple of
    facts per view (a 64,000-node fleet has ~200,000 of these; a dict each cost ~200 B more)."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: tuple[Fact[object], ...]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, name: str) -> Fact[object]:
        return self._values[self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(dict(self))


_FIELD_INDEX: dict[type[BaseModel], dict[str, int]] = {}


def _field_index(model: type[BaseModel]) -> dict[str, int]:
    index = _FIELD_INDEX.get(model)
    if index is None:
        index = _FIELD_INDEX[model] = {name: i for i, name in enumerate(model.model_fields)}
    return index


_FIELD_NAMES: dict[tuple[str, str], str] = {}
"""'gpu_state.ecc' for ('gpu_state', 'ecc'): one string per field, not one per node."""


def _field_name(prefix: str, name: str) -> str:
    text = _FIELD_NAMES.get((prefix, name))
    if text is None:
        text = _FIELD_NAMES[(prefix, name)] = f"{prefix}.{name}"
    return text


@dataclass(frozen=True)
class NodeView:
    """One node with its pool, site, GPU model, tenants and resolved declared/observed state."""

    node: Node
    pool: NodePool
    site: Site
    gpu: GpuModel
    tenants: tuple[Tenant, ...]
    workloads: tuple[Workload, ...]
    gpu_state: Mapping[str, Fact[object]]
    host: Mapping[str, Fact[object]]
    pointer: Pointer

    @cached_property
    def resource(self) -> str:
        """The node's finding resource, ``node/NAME``."""
        return f"node/{self.node.name}"

    @property
    def multi_tenant(self) -> bool:
        """Whether more than one tenant runs on this node."""
        return len(self.tenants) > 1

    def gpu_fact(self, name: str) -> Fact[object]:
        """The GPU-state fact ``name`` (observed when evidence has it, else declared)."""
        return self.gpu_state[name]


@dataclass(frozen=True)
class BmcView:
    """One BMC with the network it sits on and the nodes it manages."""

    bmc: Bmc
    facts: Mapping[str, Fact[object]]
    nodes: tuple[str, ...]
    pointer: Pointer

    @cached_property
    def resource(self) -> str:
        """The BMC's finding resource, ``bmc/NAME``."""
        return f"bmc/{self.bmc.name}"


@dataclass(frozen=True)
class Snapshot:
    """Everything the controls may look at."""

    inventory: Inventory
    source_file: str
    gpu_models: Mapping[str, GpuModel]
    """Pool name -> the catalog row its ``gpu_model`` resolved to."""
    locations: Mapping[Pointer, Position] = field(default_factory=dict)
    evidence: tuple[EvidenceDocument, ...] = ()
    evidence_origins: Mapping[int, str] = field(default_factory=dict)
    """Index into ``evidence`` -> the file it came from."""
    stale_evidence: tuple[StaleEvidence, ...] = ()
    """Documents older than their age limit: the facts they carry are unknown, with the age."""
    context: AuditContext = field(default_factory=AuditContext)
    """Audit date, ``--as-of`` date, rule-set age limit, KEV flags (set by the audit pipeline)."""
    bmc_scope: frozenset[str | None] | None = None
    """Names of the only BMCs :attr:`bmcs` and :attr:`nodes` show, with the nodes they manage
    (None in it: the nodes without a BMC too; :meth:`scoped`); None: every one. The inventory
    itself stays whole."""

    def with_context(self, context: AuditContext) -> Snapshot:
        """A new snapshot judged under ``context``."""
        return replace(self, context=context)

    def scoped(self, bmcs: Iterable[str], *, unmanaged: bool = False) -> Snapshot:
        """This snapshot showing only the BMCs named ``bmcs`` and the nodes they manage (and,
        with ``unmanaged``, the nodes without a BMC), at their places in the inventory: a batch
        of a fleet's BMCs (controls/batches.py)."""
        scope: set[str | None] = set(bmcs)
        if unmanaged:
            scope.add(None)
        return replace(self, bmc_scope=frozenset(scope))

    # -- provenance -----------------------------------------------------------------------

    def location(self, pointer: Pointer) -> FindingLocation:
        """File/line of the inventory element at ``pointer`` (nearest declared ancestor)."""
        declared_at = self.declaration(pointer)
        # Many pointers (a node and each of its fields) resolve to one declaration: one object,
        # keyed by the parser's own packed (line, column) (no key is built per finding).
        found = self._location_at.get(declared_at)
        if found is None:
            # Built unvalidated: file is this snapshot's path and line/column come from the parser.
            found = FindingLocation.at(self.source_file, *unpack_position(declared_at))
            self._location_at[declared_at] = found
        return found

    def declaration(self, pointer: Pointer) -> Position:
        """Packed (line, column) in ``source_file`` of the element at ``pointer`` (nearest
        declared ancestor; :func:`gpufence._yaml.unpack_position`): :meth:`location` without
        building a location (the parser's own int)."""
        probe = tuple(pointer)
        while probe and probe not in self.locations:
            probe = probe[:-1]
        return self.locations.get(probe, _FIRST_LINE)

    @cached_property
    def _location_at(self) -> dict[Position, FindingLocation]:
        return {}

    def _declared_fact(self, value: object, pointer: Pointer) -> Fact[object]:
        # A declared fact is its value at its pointer: nodes that inherit a field from their pool
        # share the pool's Fact (a 64,000-node fleet would otherwise hold a million copies).
        fact = self._declared_facts.get(pointer)
        if fact is None or fact.value != value or type(fact.value) is not type(value):
            fact = _Declared(value, self.source_file, self.declaration(pointer), pointer)
            self._declared_facts[pointer] = fact
        return fact

    @cached_property
    def _declared_facts(self) -> dict[Pointer, Fact[object]]:
        return {}

    @cached_property
    def _evidence_by_subject(self) -> Mapping[str, list[tuple[int, EvidenceDocument]]]:
        index: dict[str, list[tuple[int, EvidenceDocument]]] = {}
        for i, doc in enumerate(self.evidence):
            index.setdefault(doc.subject, []).append((i, doc))
        # Newest observation wins when several collectors saw the same fact.
        return {s: sorted(docs, key=lambda item: item[1].collected_at) for s, docs in index.items()}

    def _evidence_for(self, subject: str) -> list[tuple[int, EvidenceDocument]]:
        return self._evidence_by_subject.get(subject, [])

    def evidence_for(self, subject: str) -> list[tuple[EvidenceDocument, str]]:
        """Current evidence about ``subject`` (oldest first), each with the file it came from."""
        return [(doc, self._origin(i)) for i, doc in self._evidence_for(subject)]

    def _origin(self, index: int) -> str:
        return self.evidence_origins.get(index, "evidence")

    @cached_property
    def _descriptions(self) -> dict[int, str]:
        return {}

    def _described(self, index: int, doc: EvidenceDocument) -> str:
        # One string per document: findings keep it (a 10,000-BMC scan's findings held ~1.4
        # million copies, 34 MB).
        text = self._descriptions.get(index)
        if text is None:
            text = self._descriptions[index] = (
                f"{self._origin(index)} ({doc.collector} at {doc.collected_at.isoformat()})"
            )
        return text

    @cached_property
    def _stale_by_subject(self) -> Mapping[str, list[StaleEvidence]]:
        index: dict[str, list[StaleEvidence]] = {}
        for stale in self.stale_evidence:
            index.setdefault(stale.document.subject, []).append(stale)
        return index

    def stale_for(self, subject: str) -> list[StaleEvidence]:
        """Evidence about ``subject`` that was too old to count (see docs/evidence.md)."""
        # Indexed once: a scan over every stale document per subject and fact was quadratic in
        # a fleet whose evidence had all gone stale.
        return list(self._stale_by_subject.get(subject, ()))

    def evidence_gap(self, subject: str) -> str | None:
        """Why ``subject`` has no current evidence although some was given (it is stale)."""
        if self._evidence_for(subject):
            return None
        stale = self.stale_for(subject)
        return stale[-1].reason if stale else None

    def _contradiction(
        self, subject: str, index: int, doc: EvidenceDocument, key: str
    ) -> str | None:
        """A message when another document of the same time observed ``key`` differently."""
        for other_index, other in self._evidence_for(subject):
            if (
                other_index != index
                and other.collected_at == doc.collected_at
                and key in other.observed
                and other.observed[key] != doc.observed[key]
            ):
                first, second = sorted(
                    [(self._origin(index), doc), (self._origin(other_index), other)],
                    key=lambda item: item[0],
                )
                return (
                    f"contradictory evidence for {key} at {doc.collected_at.isoformat()}: "
                    f"{first[0]} says {first[1].observed[key]!r}, "
                    f"{second[0]} says {second[1].observed[key]!r}"
                )
        return None

    def observation(self, subject: str, key: str) -> Fact[object] | None:
        """The newest observation of ``key`` (raw JSON value) about ``subject``, by the rules.

        Unknown (with why) when the newest observation is contradicted by another document of
        the same time, when a collector reported it ``not_observed``, or when only stale
        evidence mentions it; None when no evidence mentions it at all.
        """
        docs = self._evidence_for(subject)
        for index, doc in reversed(docs):
            if key in doc.observed:
                if (clash := self._contradiction(subject, index, doc, key)) is not None:
                    return Fact(None, "unknown", clash)
                return Fact(doc.observed[key], "observed", self._described(index, doc))
        for index, doc in reversed(docs):
            for missing in doc.not_observed:
                if missing.fact == key:
                    return Fact(None, "unknown", f"{missing.reason} ({self._origin(index)})")
        for stale in reversed(self.stale_for(subject)):
            doc = stale.document
            if key in doc.observed or any(m.fact == key for m in doc.not_observed):
                return Fact(None, "unknown", stale.reason)
        return None

    def with_evidence(self, documents: Sequence[tuple[EvidenceDocument, str]]) -> Snapshot:
        """A new snapshot with ``documents`` (each with its origin) added to the evidence."""
        start = len(self.evidence)
        return replace(
            self,
            evidence=(*self.evidence, *(doc for doc, _ in documents)),
            evidence_origins={
                **self.evidence_origins,
                **{start + i: origin for i, (_, origin) in enumerate(documents)},
            },
        )

    @property
    def inventory_dir(self) -> Path:
        """Directory of the inventory file: relative paths in the inventory resolve against it."""
        return Path(self.source_file).resolve().parent

    def _facts(
        self,
        model: type[BaseModel],
        prefix: str,
        declared: BaseModel,
        declared_at: Mapping[str, Pointer],
        subject: str,
    ) -> Mapping[str, Fact[object]]:
        """Merge declared fields of ``declared`` with evidence ``<prefix>.<field>`` facts."""
        facts: dict[str, Fact[object]] = {}
        for name in model.model_fields:
            value = getattr(declared, name)
            if value is not None:
                facts[name] = self._declared_fact(value, declared_at[name])
            else:
                facts[name] = _Undeclared(_field_name(prefix, name), subject, declared_at[name])
        for stale in self.stale_for(subject):
            # Old evidence says nothing about now: what it observed is unknown, not declared.
            for key in [*stale.document.observed, *(m.fact for m in stale.document.not_observed)]:
                name = key.removeprefix(prefix + ".")
                if key.startswith(prefix + ".") and name in facts:
                    facts[name] = Fact(None, "unknown", stale.reason, facts[name].pointer)
        for index, doc in self._evidence_for(subject):
            origin = self._described(index, doc)
            for missing in doc.not_observed:
                name = missing.fact.removeprefix(prefix + ".")
                if name not in facts or not missing.fact.startswith(prefix + "."):
                    continue
                before = facts[name]
                # A fact the hardware can change must be observed: a collector that looked and
                # could not see it leaves it unknown, whatever the inventory declares.
                overrides = missing.fact in MUST_OBSERVE and before.source == "declared"
                if not before.known or overrides:
                    facts[name] = Fact(
                        None,
                        "unknown",
                        f"{missing.reason} ({origin})"
                        + (f"; the inventory declares {before.value!r}" if overrides else ""),
                        before.pointer,
                    )
            for key, raw in doc.observed.items():
                if not key.startswith(prefix + "."):
                    continue
                name = key.removeprefix(prefix + ".")
                if name not in model.model_fields:
                    continue
                if (clash := self._contradiction(subject, index, doc, key)) is not None:
                    facts[name] = Fact(None, "unknown", clash, facts[name].pointer)
                    continue
                try:
                    value = _field_adapter(model, name).validate_python(raw)
                except ValidationError:
                    facts[name] = Fact(
                        None,
                        "unknown",
                        f"unparseable {key}={raw!r} in {origin}",
                        facts[name].pointer,
                    )
                    continue
                before = facts[name]
                previously = before.declared if before.source == "observed" else before.value
                facts[name] = Fact(value, "observed", origin, before.pointer, previously)
        fields = _field_index(model)
        if len(facts) == len(fields) and all(a == b for a, b in zip(facts, fields, strict=True)):
            return _FactMap(fields, tuple(facts.values()))
        return facts

    # -- views ----------------------------------------------------------------------------

    @cached_property
    def tenants(self) -> Mapping[str, Tenant]:
        """Tenants by name."""
        return {t.name: t for t in self.inventory.tenants}

    @cached_property
    def sites(self) -> Mapping[str, Site]:
        """Sites by name."""
        return {s.name: s for s in self.inventory.sites}

    @cached_property
    def networks(self) -> Mapping[str, Network]:
        """Networks by name."""
        return {n.name: n for n in self.inventory.networks}

    @cached_property
    def nodes(self) -> tuple[NodeView, ...]:
        """Every node of every pool as a :class:`NodeView` (built once); within
        :attr:`bmc_scope`, the nodes its BMCs manage."""
        views: list[NodeView] = []
        for p_index, pool in enumerate(self.inventory.node_pools):
            pool_ptr: Pointer = ("node_pools", p_index)
            # Where each field is declared: the pool's pointers, shared by the nodes that do
            # not set the field themselves (one dict per pool, not one tuple per node field).
            pool_gpu_at = {name: (*pool_ptr, "gpu_state", name) for name in GpuState.model_fields}
            pool_host_at = {name: (*pool_ptr, "host", name) for name in HostState.model_fields}
            for n_index, node in enumerate(pool.nodes):
                if self.bmc_scope is not None and node.bmc not in self.bmc_scope:
                    continue
                node_ptr: Pointer = (*pool_ptr, "nodes", n_index)
                tenant_names = (
                    node.tenants
                    if node.tenants is not None
                    else tuple(dict.fromkeys(w.tenant for w in pool.workloads))
                )
                workloads = tuple(w for w in pool.workloads if w.tenant in tenant_names)
                gpu_declared = pool.gpu_state.overlaid(node.gpu_state)
                host_declared = pool.host.overlaid(node.host)
                gpu_at = _overlaid_at(pool_gpu_at, node_ptr, "gpu_state", node.gpu_state)
                host_at = _overlaid_at(pool_host_at, node_ptr, "host", node.host)
                subject = f"node/{node.name}"
                views.append(
                    NodeView(
                        node=node,
                        pool=pool,
                        site=self.sites[pool.site],
                        gpu=self.gpu_models[pool.name],
                        tenants=tuple(self.tenants[t] for t in tenant_names),
                        workloads=workloads,
                        gpu_state=self._facts(GpuState, "gpu_state", gpu_declared, gpu_at, subject),
                        host=self._facts(HostState, "host", host_declared, host_at, subject),
                        pointer=node_ptr,
                    )
                )
        return tuple(views)

    @cached_property
    def bmcs(self) -> tuple[BmcView, ...]:
        """Every BMC as a :class:`BmcView` (built once); within :attr:`bmc_scope`, those."""
        served: dict[str, list[str]] = {}
        for view in self.nodes:
            if view.node.bmc:
                served.setdefault(view.node.bmc, []).append(view.node.name)
        views = []
        for index, bmc in enumerate(self.inventory.bmcs):
            if self.bmc_scope is not None and bmc.name not in self.bmc_scope:
                continue
            ptr: Pointer = ("bmcs", index)
            at = {name: (*ptr, name) for name in Bmc.model_fields}
            views.append(
                BmcView(
                    bmc=bmc,
                    facts=self._facts(Bmc, "bmc", bmc, at, f"bmc/{bmc.name}"),
                    nodes=tuple(served.get(bmc.name, ())),
                    pointer=ptr,
                )
            )
        return tuple(views)

    @cached_property
    def any_bmc_evidence(self) -> bool:
        """Whether any evidence document is about a BMC the inventory declares."""
        return any(view.resource in self._evidence_by_subject for view in self.bmcs)

    @cached_property
    def bmc_facts_known(self) -> frozenset[str]:
        """Names of the BMC facts (inventory fields) known for at least one BMC."""
        return frozenset(
            name for view in self.bmcs for name, fact in view.facts.items() if fact.known
        )

    def pointer_of(self, section: str, name: str) -> Pointer:
        """Pointer of the element called ``name`` in a top-level list section."""
        items = getattr(self.inventory, section)
        for index, item in enumerate(items):
            if getattr(item, "name", None) == name:
                return (section, index)
        return (section,)
