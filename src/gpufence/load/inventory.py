"""Read an inventory YAML file into a :class:`~gpufence.model.snapshot.Snapshot`.

Every problem is an :class:`~gpufence.errors.InputError` naming file:line:column: YAML syntax,
unknown keys (with the closest valid key), wrong types, unknown GPU models, duplicate names and
dangling references.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gpufence._yaml import LocatedDocument, Pointer, load_yaml, pointer_to_text
from gpufence.catalog import Catalog, GpuModel, load_catalog
from gpufence.errors import InputError, InputErrors, UnknownGpuModelError
from gpufence.fabric.emit import guid_value
from gpufence.load.evidence import check_subjects
from gpufence.model.evidence import EvidenceDocument, StaleEvidence
from gpufence.model.inventory import Inventory
from gpufence.model.snapshot import Snapshot

__all__ = ["InputErrors", "load_inventory", "load_snapshot"]


def _unwrap(annotation: Any) -> Any:
    """The model or tuple type inside Optional/Annotated wrappers, for key suggestions."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that owns the mapping at ``loc`` (best effort)."""
    current: Any = Inventory
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if typing.get_origin(current) is tuple:
                current = typing.get_args(current)[0]
                continue
            return None
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _pointer_in_doc(doc: LocatedDocument, loc: Sequence[str | int]) -> Pointer:
    """Drop pydantic's union/type tags from ``loc`` so it names a place in the document.

    A part that is a real key of the document at that place is kept even if it looks like a tag
    (a key written ``v]ersion`` is a key, not pydantic's ``function-after[...]``).
    """
    out: list[str | int] = []
    node: Any = doc.data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(part, int) or not _looks_like_tag(part):
            out.append(part)
            node = None
    return tuple(out)


def _looks_like_tag(part: str) -> bool:
    return any(ch in part for ch in "[]()") or part in {
        "str",
        "int",
        "bool",
        "float",
        "none",
        "function-after",
        "function-before",
        "constrained-str",
        "lax-or-strict",
    }


MAX_REPORTED_ERRORS = 50
"""A hostile or badly broken file has thousands of problems; the first ones say enough."""


def _validation_errors(doc: LocatedDocument, exc: ValidationError) -> list[InputError]:
    errors: list[InputError] = []
    found = exc.errors(include_url=False)
    for err in found[:MAX_REPORTED_ERRORS]:
        loc = _pointer_in_doc(doc, err["loc"])
        where = pointer_to_text(loc)
        kind = err["type"]
        if kind == "extra_forbidden" and loc:
            key = str(loc[-1])
            owner = _model_at(loc[:-1])
            hint = None
            if owner is not None:
                allowed = sorted(owner.model_fields)
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    (f"did you mean {close[0]!r}? " if close else "")
                    + "valid keys: "
                    + (", ".join(allowed))
                )
            errors.append(
                InputError(
                    f"{where}: unknown key {key!r}", location=doc.locate(loc, key=True), hint=hint
                )
            )
        elif kind == "missing":
            errors.append(
                InputError(
                    f"{pointer_to_text(loc[:-1])}: missing required key {loc[-1]!r}",
                    location=doc.locate(loc[:-1]),
                )
            )
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            errors.append(
                InputError(f"{where}: {err['msg']} (got {shown})", location=doc.locate(loc))
            )
    if len(found) > MAX_REPORTED_ERRORS:
        errors.append(
            InputError(
                f"... and {len(found) - MAX_REPORTED_ERRORS:,} more problems (not listed)",
                location=doc.locate(()),
            )
        )
    return errors


def load_inventory(path: Path) -> tuple[Inventory, LocatedDocument]:
    """Parse and validate the inventory; raise :class:`InputError` with locations."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(
            "an inventory is a YAML mapping (version, organization, sites, ...)",
            location=doc.locate(()),
        )
    try:
        inventory = Inventory.model_validate(doc.data)
    except ValidationError as exc:
        errs = _validation_errors(doc, exc)
        raise (InputErrors(errs) if len(errs) > 1 else errs[0]) from exc
    return inventory, doc


def _check_unique(
    doc: LocatedDocument, what: str, items: Iterable[tuple[str, Pointer]]
) -> list[InputError]:
    seen: dict[str, Pointer] = {}
    errors = []
    for name, ptr in items:
        if name in seen:
            first = doc.locate(seen[name])
            errors.append(
                InputError(
                    f"duplicate {what} name {name!r} (first defined at line {first.line})",
                    location=doc.locate(ptr),
                )
            )
        else:
            seen[name] = ptr
    return errors


def _check_refs(
    doc: LocatedDocument, what: str, known: set[str], refs: Iterable[tuple[str, Pointer]]
) -> list[InputError]:
    errors = []
    for name, ptr in refs:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            defined = ", ".join(sorted(known)) if known else "none are defined"
            errors.append(
                InputError(
                    f"{pointer_to_text(ptr)}: unknown {what} {name!r} ({what}s: {defined})",
                    location=doc.locate(ptr),
                    hint=hint,
                )
            )
    return errors


def _resolve(inventory: Inventory, doc: LocatedDocument, catalog: Catalog) -> dict[str, GpuModel]:
    """Cross-reference checks and GPU model resolution; all errors are reported together."""
    inv = inventory
    errors: list[InputError] = []

    def named(section: str, items: Sequence[Any]) -> list[tuple[str, Pointer]]:
        return [(item.name, (section, i, "name")) for i, item in enumerate(items)]

    errors += _check_unique(doc, "site", named("sites", inv.sites))
    errors += _check_unique(doc, "tenant", named("tenants", inv.tenants))
    errors += _check_unique(doc, "node pool", named("node_pools", inv.node_pools))
    errors += _check_unique(doc, "BMC", named("bmcs", inv.bmcs))
    errors += _check_unique(doc, "network", named("networks", inv.networks))
    errors += _check_unique(doc, "storage", named("storage", inv.storage))
    errors += _check_unique(
        doc, "KMS", [(k.name, ("secrets", "kms", i, "name")) for i, k in enumerate(inv.secrets.kms)]
    )
    errors += _check_unique(
        doc,
        "node",
        [
            (node.name, ("node_pools", p, "nodes", n, "name"))
            for p, pool in enumerate(inv.node_pools)
            for n, node in enumerate(pool.nodes)
        ],
    )

    sites = {s.name for s in inv.sites}
    tenants = {t.name for t in inv.tenants}
    bmcs = {b.name for b in inv.bmcs}
    networks = {n.name for n in inv.networks}
    kms = {k.name for k in inv.secrets.kms}

    gpu_models: dict[str, GpuModel] = {}
    bmc_users: dict[str, Pointer] = {}
    for p, pool in enumerate(inv.node_pools):
        base: Pointer = ("node_pools", p)
        errors += _check_refs(doc, "site", sites, [(pool.site, (*base, "site"))])
        errors += _check_refs(
            doc,
            "tenant",
            tenants,
            [(w.tenant, (*base, "workloads", i, "tenant")) for i, w in enumerate(pool.workloads)],
        )
        errors += _check_refs(
            doc,
            "network",
            networks,
            [(n, (*base, "networks", i)) for i, n in enumerate(pool.networks)],
        )
        pool_tenants = {w.tenant for w in pool.workloads}
        for n, node in enumerate(pool.nodes):
            node_ptr = (*base, "nodes", n)
            for i, text in enumerate(node.ib_port_guids):
                try:
                    guid_value(text)
                except InputError as exc:
                    errors.append(exc.with_location(doc.locate((*node_ptr, "ib_port_guids", i))))
            if node.bmc is not None:
                errors += _check_refs(doc, "BMC", bmcs, [(node.bmc, (*node_ptr, "bmc"))])
                if node.bmc in bmc_users:
                    first = doc.locate(bmc_users[node.bmc])
                    errors.append(
                        InputError(
                            f"BMC {node.bmc!r} is already assigned to another node "
                            f"(line {first.line}); one BMC manages one node",
                            location=doc.locate((*node_ptr, "bmc")),
                        )
                    )
                bmc_users.setdefault(node.bmc, (*node_ptr, "bmc"))
            for i, t in enumerate(node.tenants or ()):
                if t not in pool_tenants:
                    errors.append(
                        InputError(
                            f"{pointer_to_text((*node_ptr, 'tenants', i))}: tenant {t!r} has no "
                            f"workload in pool {pool.name!r} (add it to the pool's workloads)",
                            location=doc.locate((*node_ptr, "tenants", i)),
                        )
                    )
        try:
            gpu_models[pool.name] = catalog.lookup(pool.gpu_model)
        except UnknownGpuModelError as exc:
            errors.append(exc.with_location(doc.locate((*base, "gpu_model"))))
    for b, bmc in enumerate(inv.bmcs):
        errors += _check_refs(doc, "network", networks, [(bmc.network, ("bmcs", b, "network"))])
    for si, site in enumerate(inv.sites):
        # A licence naming a model gpufence does not know would silently cover nothing.
        for a, auth in enumerate(site.export_authorizations):
            for m, name in enumerate(auth.gpu_models):
                try:
                    catalog.lookup(name)
                except UnknownGpuModelError as exc:
                    where = ("sites", si, "export_authorizations", a, "gpu_models", m)
                    errors.append(exc.with_location(doc.locate(where)))
    for i, net in enumerate(inv.networks):
        errors += _check_refs(
            doc,
            "tenant",
            tenants,
            [(t, ("networks", i, "tenants", j)) for j, t in enumerate(net.tenants)],
        )
        errors += _check_refs(
            doc,
            "network",
            networks,
            [(r, ("networks", i, "routed_to", j)) for j, r in enumerate(net.routed_to)],
        )
    for i, store in enumerate(inv.storage):
        errors += _check_refs(
            doc,
            "tenant",
            tenants,
            [(t, ("storage", i, "tenants", j)) for j, t in enumerate(store.tenants)],
        )
        if store.kms is not None:
            errors += _check_refs(doc, "KMS", kms, [(store.kms, ("storage", i, "kms"))])
    if errors:
        errors.sort(key=lambda e: (e.location.line or 0) if e.location else 0)
        raise InputErrors(errors) if len(errors) > 1 else errors[0]
    return gpu_models


def load_snapshot(
    path: Path,
    evidence: Sequence[tuple[EvidenceDocument, str]] = (),
    *,
    catalog: Catalog | None = None,
    stale: Sequence[StaleEvidence] = (),
) -> Snapshot:
    """Inventory file (+ evidence documents with their origin) -> snapshot.

    InputError when evidence names a subject the inventory lacks or carries facts of the wrong
    kind (see :func:`gpufence.load.evidence.check_subjects`).
    """
    inventory, doc = load_inventory(path)
    gpu_models = _resolve(inventory, doc, catalog or load_catalog())
    check_subjects(inventory, [*evidence, *((s.document, s.origin) for s in stale)])
    return Snapshot(
        inventory=inventory,
        source_file=str(path),
        gpu_models=gpu_models,
        locations=doc.value_positions,
        evidence=tuple(d for d, _ in evidence),
        evidence_origins={i: origin for i, (_, origin) in enumerate(evidence)},
        stale_evidence=tuple(stale),
    )
