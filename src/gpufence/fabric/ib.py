"""InfiniBand tenant reachability from PKey tables (pure).

Two ports talk iff they share a PKey and one of them is a full member (:func:`shared_pkey`), so
tenant X reaches tenant Y iff for some PKey, X has a full-member port and Y any port (a different
one), or the other way round. One pass over the (port, PKey) entries builds, per PKey, the tenants
holding it in full and at all (with two witness ports each, enough to always find two *different*
ports); a PKey leaks iff it has a full tenant and two tenants in all. Pairs are then read off the
leaking PKeys only, so an isolated fabric costs O(entries) and a leaking one O(entries + pairs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpufence.fabric.membership import FULL, PKeyTable

__all__ = ["IbLeak", "IbPort", "IbVerdict", "tenant_reach"]


@dataclass(frozen=True, slots=True)
class IbPort:
    """One InfiniBand port: GUID, owning node and tenants."""

    guid: int
    node: str | None
    full: bool

    def describe(self) -> str:
        """The port as text: GUID and node."""
        where = f" ({self.node})" if self.node else ""
        return f"0x{self.guid:016x}{where} {'full' if self.full else 'limited'}"


@dataclass(frozen=True, slots=True)
class IbLeak:
    """Tenant ``a`` reaches tenant ``b`` over ``pkey``: the two witness ports prove it."""

    a: str
    b: str
    pkey: int
    pkey_name: str
    a_port: IbPort
    b_port: IbPort

    def describe(self) -> str:
        """The leak as one line: which ports share which PKey with full membership."""
        return (
            f"PKey 0x{self.pkey:04x} ({self.pkey_name}): {self.a} port {self.a_port.describe()}"
            f" <-> {self.b} port {self.b_port.describe()}"
        )


@dataclass(frozen=True)
class IbVerdict:
    """Tenant pairs that can talk over InfiniBand partitions, with the proof."""

    leaks: Mapping[tuple[str, str], IbLeak]
    """(a, b) with a < b -> the first witness (lowest PKey)."""
    leaking_pkeys: tuple[int, ...]
    ports_with_owner: int

    def reachable(self, tenant: str) -> dict[str, IbLeak]:
        """Tenants ``tenant`` reaches, each with the leak that proves it."""
        out = {}
        for (a, b), leak in self.leaks.items():
            if a == tenant:
                out[b] = leak
            elif b == tenant:
                out[a] = leak
        return out


def tenant_reach(
    tables: Mapping[int, PKeyTable],
    owners: Mapping[int, Sequence[str]],
    names: Mapping[int, str],
    nodes: Mapping[int, str] | None = None,
) -> IbVerdict:
    """Which tenants reach which, given each port's PKey table and owning tenant(s)."""
    node_of = nodes or {}
    # pkey -> tenant -> up to two (guid, full) witnesses; the full map only holds full ports.
    full_by: dict[int, dict[str, list[int]]] = {}
    any_by: dict[int, dict[str, list[tuple[int, bool]]]] = {}
    counted = 0
    for guid, table in tables.items():
        tenants = owners.get(guid)
        if not tenants:
            continue
        counted += 1
        for pkey, bits in table.items():
            is_full = bool(bits & FULL)
            members = any_by.setdefault(pkey, {})
            for tenant in tenants:
                seen = members.setdefault(tenant, [])
                if len(seen) < 2:
                    seen.append((guid, is_full))
                if is_full:
                    fulls = full_by.setdefault(pkey, {}).setdefault(tenant, [])
                    if len(fulls) < 2:
                        fulls.append(guid)
    leaks: dict[tuple[str, str], IbLeak] = {}
    leaking = []
    for pkey in sorted(full_by):
        members = any_by[pkey]
        if len(members) < 2:
            continue
        found = False
        for x, full_ports in full_by[pkey].items():
            for y, ports in members.items():
                if x == y:
                    continue
                witness = next(
                    ((a, b) for a in full_ports for b in ports if a != b[0]),
                    None,
                )
                if witness is None:
                    continue  # the same (shared) port is all they have in common
                found = True
                a_guid, (b_guid, b_full) = witness
                first, second = (x, y) if x < y else (y, x)
                if (first, second) in leaks:
                    continue
                a_port = IbPort(a_guid, node_of.get(a_guid), True)
                b_port = IbPort(b_guid, node_of.get(b_guid), b_full)
                if first != x:
                    a_port, b_port = b_port, a_port
                leaks[first, second] = IbLeak(
                    first, second, pkey, names.get(pkey, f"{pkey:04x}"), a_port, b_port
                )
        if found:
            leaking.append(pkey)
    return IbVerdict(leaks=leaks, leaking_pkeys=tuple(leaking), ports_with_owner=counted)
