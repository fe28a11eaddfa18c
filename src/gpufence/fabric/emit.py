"""Write a partitions.conf from a plan: one PKey per tenant, limited-member shared storage (pure).

The output follows the isolation pattern the linter checks for:

- ``Default=0x7fff, ipoib : ALL=limited, SELF=full ;``: every port is only a *limited* member of
  the default partition (hosts cannot talk to each other over it), the SM keeps full membership;
- one partition per tenant, its ports full members (they talk to each other, to nobody else);
- one storage partition where storage targets are full and every tenant port is limited, so each
  tenant reaches storage but tenants never reach each other through it (limited-limited pairs
  cannot talk);
- short lines (a statement continues over lines; OpenSM splits lines over 4,094 bytes), GUIDs as
  0x-prefixed 16-digit hex, explicit PKeys and memberships.

The planner calls :func:`emit_partitions` with plain mappings; it raises :class:`InputError` for a
plan that cannot be written safely (a port in two tenants, a storage target that is also a tenant
port, PKeys out of range or reused).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpufence.errors import InputError
from gpufence.fabric.partitions import DEFAULT_PKEY
from gpufence.model.inventory import Inventory, NetworkKind

__all__ = [
    "STORAGE_PKEY",
    "TENANT_PKEY_BASE",
    "TenantPorts",
    "emit_partitions",
    "guid_value",
    "tenant_ports",
]

TENANT_PKEY_BASE = 0x0100
STORAGE_PKEY = 0x0010
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PER_LINE = 4


def guid_value(guid: str | int) -> int:
    """A port GUID from ``0x0002c903...``, ``0002:c903:...`` or an int; InputError if invalid."""
    if isinstance(guid, int):
        value = guid
    else:
        text = guid.strip().lower().replace(":", "")
        text = text[2:] if text.startswith("0x") else text
        if not text or len(text) > 16 or any(c not in "0123456789abcdef" for c in text):
            raise InputError(f"{guid!r} is not a port GUID (64-bit hex, e.g. 0x0002c90300a1b2c3)")
        value = int(text, 16)
    if not 0 < value < 1 << 64:
        raise InputError(f"{guid!r} is not a port GUID (must be 1 .. 2**64-1)")
    return value


def _member_lines(members: list[str], indent: str = "    ") -> list[str]:
    rows = [members[i : i + _PER_LINE] for i in range(0, len(members), _PER_LINE)]
    lines = [indent + ", ".join(row) + "," for row in rows]
    lines[-1] = lines[-1][:-1] + " ;"
    return lines


def emit_partitions(
    tenants: Mapping[str, Iterable[str | int]],
    storage_targets: Iterable[str | int] = (),
    *,
    pkeys: Mapping[str, int] | None = None,
    storage_pkey: int = STORAGE_PKEY,
    storage_name: str = "storage",
    ipoib: bool = True,
) -> str:
    """partitions.conf text for ``tenants`` (name -> port GUIDs) and shared storage targets.

    ``pkeys`` pins tenant PKeys; the others get ``TENANT_PKEY_BASE + i`` in name order, skipping
    pinned ones. Tenants without ports get no partition (OpenSM would delete it anyway).
    """
    owner: dict[int, str] = {}
    ports: dict[str, list[int]] = {}
    for tenant in sorted(tenants):
        if not _NAME.match(tenant) or tenant == "Default" or tenant == storage_name:
            raise InputError(f"tenant name {tenant!r} cannot be a partition name")
        ports[tenant] = []
        for raw in tenants[tenant]:
            guid = guid_value(raw)
            if owner.get(guid, tenant) != tenant:
                raise InputError(
                    f"port 0x{guid:016x} is listed for tenants {owner[guid]!r} and {tenant!r}; "
                    "a port belongs to one tenant"
                )
            if guid not in owner:
                owner[guid] = tenant
                ports[tenant].append(guid)
    targets = list(dict.fromkeys(guid_value(raw) for raw in storage_targets))
    for guid in targets:
        if guid in owner:
            raise InputError(
                f"storage target 0x{guid:016x} is also a port of tenant {owner[guid]!r}; it would "
                "be a full member of both partitions and bridge every tenant"
            )
    chosen = _assign_pkeys(sorted(ports), pkeys or {}, storage_pkey if targets else None)
    flags = ", ipoib" if ipoib else ""
    out = [
        "# partitions.conf written by gpufence (OpenSM syntax; lint with `gpufence fabric lint`)",
        "# Every port is a limited member of the default partition; the SM keeps full membership.",
        f"Default=0x{DEFAULT_PKEY:04x}{flags} : ALL=limited, SELF=full ;",
    ]
    for tenant in sorted(ports):
        if not ports[tenant]:
            out.append(f"# tenant {tenant}: no InfiniBand ports, no partition")
            continue
        out += ["", f"# tenant {tenant}: {len(ports[tenant])} port(s), all full members"]
        out.append(f"{tenant}=0x{chosen[tenant]:04x}{flags} :")
        out += _member_lines([f"0x{g:016x}=full" for g in ports[tenant]])
    if targets:
        out += [
            "",
            "# shared storage: targets full, tenant ports limited (tenants reach storage, "
            "not each other)",
            f"{storage_name}=0x{storage_pkey:04x}{flags} :",
        ]
        members = [f"0x{g:016x}=full" for g in targets]
        members += [f"0x{g:016x}=limited" for t in sorted(ports) for g in ports[t]]
        out += _member_lines(members)
    return "\n".join(out) + "\n"


def _assign_pkeys(
    tenants: list[str], pinned: Mapping[str, int], storage_pkey: int | None
) -> dict[str, int]:
    used: dict[int, str] = {}
    if storage_pkey is not None:
        used[storage_pkey] = "storage"
    chosen: dict[str, int] = {}
    for tenant, pkey in pinned.items():
        if not 0 < pkey < DEFAULT_PKEY:
            raise InputError(f"PKey 0x{pkey:x} of tenant {tenant!r} is outside 0x0001-0x7ffe")
        if pkey in used:
            raise InputError(f"PKey 0x{pkey:04x} is given to {used[pkey]!r} and {tenant!r}")
        used[pkey] = tenant
        chosen[tenant] = pkey
    candidate = TENANT_PKEY_BASE
    for tenant in tenants:
        if tenant in chosen:
            continue
        while candidate in used:
            candidate += 1
        if candidate >= DEFAULT_PKEY:
            raise InputError("more tenants than free PKeys")
        used[candidate] = tenant
        chosen[tenant] = candidate
    return chosen


@dataclass(frozen=True)
class TenantPorts:
    """Port GUIDs per tenant gathered from an inventory, and the nodes left out (with why)."""

    tenants: dict[str, list[str]]
    skipped: list[str]


def tenant_ports(
    inventory: Inventory,
    network: str | None = None,
    node_tenants: Mapping[str, Iterable[str]] | None = None,
) -> TenantPorts:
    """Each tenant's InfiniBand port GUIDs from the inventory's ``ib_port_guids`` (pure).

    ``network`` limits to node pools attached to that network (needed when the inventory has
    more than one InfiniBand network). ``node_tenants`` (node -> tenants, from a plan) overrides
    the inventory's node/pool tenants. A node serving several tenants joins no tenant partition:
    one port cannot be a full member for two tenants without joining them, so it is left out
    and named in ``skipped``.
    """
    ib_networks = [n.name for n in inventory.networks if n.kind is NetworkKind.INFINIBAND]
    if network is None and len(ib_networks) > 1:
        raise InputError(
            f"the inventory has {len(ib_networks)} InfiniBand networks "
            f"({', '.join(ib_networks)}); give --network NAME"
        )
    if network is not None and network not in ib_networks:
        raise InputError(
            f"--network {network!r} is not an InfiniBand network of the inventory "
            f"(known: {', '.join(ib_networks) or 'none'})"
        )
    tenants: dict[str, list[str]] = {t.name: [] for t in inventory.tenants}
    skipped: list[str] = []
    for pool in inventory.node_pools:
        if network is not None and network not in pool.networks:
            continue
        for node in pool.nodes:
            if not node.ib_port_guids:
                continue
            if node_tenants is not None:
                names = tuple(node_tenants.get(node.name, ()))
            elif node.tenants is not None:
                names = node.tenants
            else:
                names = tuple(dict.fromkeys(w.tenant for w in pool.workloads))
            if len(names) != 1:
                why = "no tenant" if not names else f"tenants {', '.join(names)}"
                skipped.append(f"{node.name} ({why}): its ports join no tenant partition")
                continue
            tenants.setdefault(names[0], []).extend(node.ib_port_guids)
    return TenantPorts(tenants, skipped)
