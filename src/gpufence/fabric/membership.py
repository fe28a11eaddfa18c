"""PKey tables as OpenSM programs them, and who may talk to whom (pure).

:func:`program` replays a parsed partitions.conf against a subnet's end ports the way OpenSM's
``osm_prtn_make_partitions`` does: the default partition first (every port limited, the SM port
full; every port *full* when the file is missing or fails to parse), then each membership
operation in file order (a later statement replaces an earlier membership of the same port, also
with ``allow_both_pkeys``, where only ``both`` gives a port both entries), GUIDs not in the subnet
silently ignored, partitions left empty deleted.

:func:`shared_pkey` is OpenSM's ``match_pkey`` rule (``osm_pkey.c``): two ports can talk iff they
hold the same PKey base and at least one of them as a full member.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from gpufence.fabric.partitions import (
    DEFAULT_PKEY,
    MemberKind,
    MemberOp,
    Membership,
    PartitionsConfig,
)

__all__ = [
    "FULL",
    "LIMITED",
    "PKeyTable",
    "PortType",
    "Programmed",
    "SubnetPorts",
    "format_table",
    "program",
    "shared_pkey",
    "table_from_values",
]

LIMITED = 1
FULL = 2
PKeyTable = Mapping[int, int]
"""PKey base (15 bits) -> LIMITED | FULL bits (both with ``allow_both_pkeys``)."""


class PortType(IntEnum):
    """IB node type of the port's node (``IB_NODE_TYPE_*``)."""

    CA = 1
    SWITCH = 2
    ROUTER = 3


@dataclass(frozen=True)
class SubnetPorts:
    """The end ports OpenSM knows (CA ports, switch port 0, router ports) and the SM's port."""

    ports: Mapping[int, PortType]
    sm_port: int | None = None


@dataclass(frozen=True)
class Programmed:
    """The PKey tables OpenSM would program, with how it got there."""

    tables: Mapping[int, PKeyTable]
    names: Mapping[int, str]
    """PKey -> partition name, for partitions that kept at least one member."""
    fell_back: bool
    """The file failed to parse: OpenSM applied ``Default=0x7fff : ALL=full`` instead."""
    missing_guids: tuple[MemberOp, ...] = ()
    """GUID members that are not ports of this subnet (OpenSM ignores them silently)."""
    self_unresolved: bool = False
    """SELF was used but the SM's port is not known here."""
    deleted: tuple[int, ...] = field(default=())
    """PKeys whose partition ended with no members (OpenSM deletes them)."""


def _targets(op: MemberOp, subnet: SubnetPorts) -> Iterable[int]:
    if op.kind is MemberKind.GUID:
        return (op.guid,) if op.guid is not None and op.guid in subnet.ports else ()
    if op.kind is MemberKind.SELF:
        return (subnet.sm_port,) if subnet.sm_port is not None else ()
    if op.kind is MemberKind.ALL:
        return subnet.ports.keys()
    wanted = {
        MemberKind.ALL_CAS: PortType.CA,
        MemberKind.ALL_SWITCHES: PortType.SWITCH,
        MemberKind.ALL_ROUTERS: PortType.ROUTER,
    }[op.kind]
    return [guid for guid, kind in subnet.ports.items() if kind is wanted]


def program(
    config: PartitionsConfig | None, subnet: SubnetPorts, *, allow_both_pkeys: bool = False
) -> Programmed:
    """PKey tables for every port of ``subnet`` (``config`` None = no file: all full)."""
    fell_back = config is None or config.fails_open
    # pkey -> (full members, limited members); dicts keep insertion order like cl_map.
    parts: dict[int, tuple[dict[int, None], dict[int, None]]] = {DEFAULT_PKEY: ({}, {})}
    full, limited = parts[DEFAULT_PKEY]
    (full if fell_back else limited).update(dict.fromkeys(subnet.ports))
    if subnet.sm_port is not None:  # prtn_make_default: the SM port is always full
        limited.pop(subnet.sm_port, None)
        full[subnet.sm_port] = None
    missing: list[MemberOp] = []
    self_unresolved = False
    names: dict[int, str] = {DEFAULT_PKEY: "Default"}
    if config is not None and not fell_back:
        names.update(config.names)
        for pkey in config.names:
            parts.setdefault(pkey, ({}, {}))
        for op in config.ops:
            full, limited = parts[op.pkey]
            targets = _targets(op, subnet)
            if op.kind is MemberKind.GUID and not targets:
                missing.append(op)
            if op.kind is MemberKind.SELF and subnet.sm_port is None:
                self_unresolved = True
            as_full = op.membership is not Membership.LIMITED
            as_limited = op.membership is Membership.LIMITED or (
                op.membership is Membership.BOTH and allow_both_pkeys
            )
            for guid in targets:
                # Each statement replaces the port's membership in the partition; only 'both'
                # under -W leaves it in both tables (measured on 3.3.23 with and without -W).
                full.pop(guid, None)
                limited.pop(guid, None)
                if as_full:
                    full[guid] = None
                if as_limited:
                    limited[guid] = None
    tables: dict[int, dict[int, int]] = {guid: {} for guid in subnet.ports}
    deleted = []
    for pkey, (full, limited) in parts.items():
        if not full and not limited:
            deleted.append(pkey)
            continue
        for guid in full:
            tables[guid][pkey] = tables[guid].get(pkey, 0) | FULL
        for guid in limited:
            tables[guid][pkey] = tables[guid].get(pkey, 0) | LIMITED
    kept = {pkey: names.get(pkey, f"{pkey:04x}") for pkey in parts if pkey not in deleted}
    return Programmed(
        tables=tables,
        names=kept,
        fell_back=fell_back,
        missing_guids=tuple(missing),
        self_unresolved=self_unresolved,
        deleted=tuple(sorted(deleted)),
    )


def shared_pkey(a: PKeyTable, b: PKeyTable) -> int | None:
    """The lowest PKey base over which the two ports may talk (``match_pkey``), or None.

    OpenSM's ``osm_physp_share_pkey`` also treats an *empty* table as sharing everything; callers
    that read observed tables must handle that case themselves (see ``observed.py``).
    """
    if len(b) < len(a):
        a, b = b, a
    best: int | None = None
    for pkey, bits in a.items():
        other = b.get(pkey)
        if other and (bits & FULL or other & FULL) and (best is None or pkey < best):
            best = pkey
    return best


def table_from_values(values: Iterable[int]) -> dict[int, int]:
    """A table from raw 16-bit PKey entries (0x0000/0x8000 = empty slots, skipped)."""
    table: dict[int, int] = {}
    for value in values:
        base = value & 0x7FFF
        if base:
            table[base] = table.get(base, 0) | (FULL if value & 0x8000 else LIMITED)
    return table


def format_table(table: PKeyTable) -> list[str]:
    """Entries as OpenSM writes them: 0x8a01 (full), 0x0a01 (limited), sorted by base."""
    out = []
    for pkey in sorted(table):
        if table[pkey] & FULL:
            out.append(f"0x{pkey | 0x8000:04x}")
        if table[pkey] & LIMITED:
            out.append(f"0x{pkey:04x}")
    return out
