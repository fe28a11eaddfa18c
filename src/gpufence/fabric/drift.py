"""Drift: what the subnet manager programmed versus what partitions.conf says it should (pure).

The intent is replayed on the *observed* subnet (its real end ports and SM port, from
ibnetdiscover and sminfo), so ALL/SELF/ALL_SWITCHES resolve exactly as OpenSM resolved them, and
compared port by port with the PKey tables read back with ``smpquery pkeys``. A difference means
the SM runs another file, a fallback (the file failed to parse on the SM), a UFM override, a
manual ``smpquery``/SMP write (M_Key 0 lets any host do that), or a port that is not where the
inventory thinks it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpufence.fabric.membership import SubnetPorts, format_table, program
from gpufence.fabric.observed import ObservedFabric
from gpufence.fabric.partitions import PartitionsConfig

__all__ = ["PortDrift", "drift"]


@dataclass(frozen=True, slots=True)
class PortDrift:
    """How one port's programmed PKey table differs from the partitions.conf intent."""

    guid: str
    node: str
    expected: tuple[str, ...]
    observed: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """PKeys the intent gives the port that the table lacks."""
        return tuple(e for e in self.expected if e not in self.observed)

    @property
    def unexpected(self) -> tuple[str, ...]:
        """PKeys in the table that the intent does not give the port."""
        return tuple(e for e in self.observed if e not in self.expected)

    def describe(self) -> str:
        """The drift as one line for finding messages."""
        parts = []
        if self.unexpected:
            parts.append("unexpected " + " ".join(self.unexpected))
        if self.missing:
            parts.append("missing " + " ".join(self.missing))
        return f"{self.node} {self.guid}: " + ", ".join(parts)


def drift(
    config: PartitionsConfig, observed: ObservedFabric, *, allow_both_pkeys: bool = False
) -> tuple[list[PortDrift], int, str | None]:
    """Ports whose observed table differs from the intent, how many were compared, and a note.

    Without ``sminfo`` the SM's port is unknown, and SELF (and the default partition's built-in
    full membership of the SM) cannot be placed; if exactly one port then differs, and it matches
    the intent *as the SM's port*, it is taken as the SM (said in the note).
    """
    subnet = observed.subnet()
    found = _compare(config, observed, subnet, allow_both_pkeys)
    compared = sum(1 for p in observed.ports if p.pkeys is not None)
    if subnet.sm_port is not None or len(found) != 1:
        note = None if subnet.sm_port is not None else "SM port unknown (no sminfo collected)"
        return found, compared, note
    candidate = int(found[0].guid, 16)
    retry = _compare(config, observed, SubnetPorts(subnet.ports, candidate), allow_both_pkeys)
    if not retry:
        return [], compared, f"no sminfo: port {found[0].guid} ({found[0].node}) taken as the SM's"
    return found, compared, "SM port unknown (no sminfo collected)"


def _compare(
    config: PartitionsConfig, observed: ObservedFabric, subnet: SubnetPorts, allow_both: bool
) -> list[PortDrift]:
    expected = program(config, subnet, allow_both_pkeys=allow_both).tables
    out = []
    for port in observed.ports:
        table = port.table()
        if table is None:
            continue
        want = tuple(format_table(expected.get(int(port.guid, 16), {})))
        have = tuple(format_table(table))
        if sorted(want) != sorted(have):
            out.append(PortDrift(port.guid, port.node_name, want, have))
    return out
