"""What OpenSM made of a partitions.conf: the parser's result types (see ``partitions.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "DEFAULT_PKEY",
    "FGETS_CHUNK",
    "MemberKind",
    "MemberOp",
    "Membership",
    "Multicast",
    "OpensmEvent",
    "ParseError",
    "PartitionsConfig",
    "Statement",
]

DEFAULT_PKEY = 0x7FFF
"""The default partition's PKey (``IB_DEFAULT_PARTIAL_PKEY``)."""
FGETS_CHUNK = 4094
"""Bytes one ``fgets(line, sizeof(line) - 1, f)`` call returns at most (``char line[4096]``)."""


class Membership(StrEnum):
    """A port's membership in a partition: full, limited or both."""

    FULL = "full"
    LIMITED = "limited"
    BOTH = "both"


class MemberKind(StrEnum):
    """What a partitions.conf member names: a GUID or a keyword (ALL, SELF, ...)."""

    GUID = "guid"
    ALL = "ALL"
    ALL_CAS = "ALL_CAS"
    ALL_SWITCHES = "ALL_SWITCHES"
    ALL_ROUTERS = "ALL_ROUTERS"
    SELF = "SELF"


class MemberOp(NamedTuple):
    """One ``osm_prtn_add_port``/``osm_prtn_add_all`` call, in file order.

    (A named tuple rather than a frozen dataclass: a 100k-port file makes 200k of them.)
    """

    pkey: int
    """15-bit PKey of the partition the member was added to."""
    kind: MemberKind
    guid: int | None
    """Port GUID as OpenSM read it (after octal/decimal/sign/overflow rules); GUID kind only."""
    membership: Membership
    """As requested; ``both`` becomes full only unless OpenSM runs with ``-W``."""
    line: int
    column: int
    text: str
    """The member token as written (name, and ``=flag`` when given)."""
    flag: str | None
    """The ``=flag`` text as written (None when absent)."""


@dataclass(frozen=True, slots=True)
class Multicast:
    """A multicast group a partition declares, where, and whether OpenSM accepts it."""

    mgid: str
    line: int
    column: int
    multicast: bool
    """False when OpenSM rejects it ("gid is not multicast"): no group is created."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One ``header : members ;`` statement as OpenSM understood it."""

    line: int
    column: int
    name: str | None
    pkey_text: str | None
    pkey: int
    """The 15-bit PKey the statement's members went to (after masking, merge or generation)."""
    how: str
    """'explicit', 'generated' (no PKey given) or 'by-name' (no PKey, an earlier name matched)."""
    created: bool
    """False when the PKey already existed, so OpenSM merged this statement into it."""
    ipoib: bool
    indx0: bool
    defmember: Membership
    flags: tuple[tuple[str, str | None, int, int], ...]
    """Header flags as written: (flag, value, line, column)."""
    members: tuple[MemberOp, ...]
    mgids: tuple[Multicast, ...]
    terminated: bool
    """Ended by ';' (an unterminated last statement still takes effect)."""


@dataclass(frozen=True, slots=True)
class ParseError:
    """A ``PARSE ERROR``: OpenSM drops the whole file and applies ``Default=0x7fff:ALL=full``."""

    kind: str
    """'no-partition-definition', 'bad-partition-definition', 'bad-port-guid' or 'no-statement'
    (the file holds no statement at all: empty or only comments)."""
    message: str
    """OpenSM's own log text."""
    line: int
    column: int
    opensm_line: int
    """The line number OpenSM logs (it counts 4,094-byte pieces of long lines as lines)."""
    token: str


@dataclass(frozen=True, slots=True)
class OpensmEvent:
    """Something OpenSM only logs at VERBOSE level (or logs and carries on): silent in practice."""

    kind: str
    message: str
    line: int
    column: int
    token: str


@dataclass(frozen=True)
class PartitionsConfig:
    """What OpenSM made of one partitions.conf."""

    source: str
    statements: tuple[Statement, ...]
    ops: tuple[MemberOp, ...]
    errors: tuple[ParseError, ...]
    """The first is the one OpenSM reports (it stops there); later ones are found by resyncing
    at the next ';' so a user can fix them all in one go."""
    events: tuple[OpensmEvent, ...]
    names: dict[int, str]
    """PKey -> partition name (the first name wins on merge)."""
    physical_lines: tuple[tuple[int, int], ...]
    """(line number, length in bytes) of every line longer than OpenSM reads at once."""
    crlf_lines: tuple[int, ...]
    has_default_rule: bool
    chunks: tuple[tuple[int, int], ...] = field(repr=False, default=())
    """OpenSM line number -> (file line, byte offset of the piece in that line), 1-based index."""

    @property
    def fails_open(self) -> bool:
        """OpenSM discards the file and makes every port a full member of the default partition."""
        return bool(self.errors)
