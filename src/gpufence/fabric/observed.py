"""What the subnet manager actually programmed: parsers for infiniband-diags output (pure).

Formats (real samples in ``../shared/data/fabric/fixtures``):

- ``ibnetdiscover`` topology (node blocks with ``switchguid=``/``caguid=``, port lines with port
  GUIDs in parentheses and LIDs in the comments) and ``ibnetdiscover -p`` (one line per port);
- ``smpquery pkeys LID PORT``: the raw tool prints only the table, so a dump of several ports is
  several outputs each preceded by a ``# smpquery pkeys LID PORT`` line (any number of ``#``), the
  way the fixtures and :mod:`gpufence.collect.fabric` write them;
- ``saquery -p --src-to-dst A:B`` PathRecords (empty output = the SA refused: no shared PKey),
  with ``# saquery ... A:B`` lines naming each query; ``saquery PKTR`` records;
- ``sminfo`` and OpenSM's ``guid2lid`` cache file.

Everything becomes an :class:`ObservedFabric` (frozen, JSON-serialisable: it travels in evidence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import Field

from gpufence._frozen import Frozen
from gpufence.errors import InputError, SourceLocation
from gpufence.fabric.membership import PortType, SubnetPorts, table_from_values

__all__ = [
    "ObservedFabric",
    "ObservedPort",
    "PathAnswer",
    "Topology",
    "TopologyPort",
    "guid_text",
    "observed_fabric",
    "parse_guid2lid",
    "parse_ibnetdiscover",
    "parse_pathrecords",
    "parse_pkey_dump",
    "parse_pktr",
    "parse_sminfo",
]

_TYPES = {"ca": PortType.CA, "sw": PortType.SWITCH, "switch": PortType.SWITCH}
_TYPES |= {"rt": PortType.ROUTER, "router": PortType.ROUTER}


def guid_text(guid: int) -> str:
    """A port GUID as 0x-prefixed 16-digit hex."""
    return f"0x{guid:016x}"


class TopologyPort(Frozen):
    """An end port: a CA or router port, or a switch's management port 0."""

    guid: int
    node_guid: int
    node_type: PortType
    node_name: str
    port: int
    lid: int | None = None


class Topology(Frozen):
    """The subnet as ibnetdiscover saw it: switches, channel adapters and links."""

    ports: tuple[TopologyPort, ...]

    def subnet(self, sm_port: int | None) -> SubnetPorts:
        """The subnet's ports by GUID and type, with the subnet manager's port GUID."""
        return SubnetPorts({p.guid: p.node_type for p in self.ports}, sm_port)

    def by_lid_port(self) -> dict[tuple[int, int], TopologyPort]:
        """Ports by (LID, port number), as smpquery addresses them."""
        return {(p.lid, p.port): p for p in self.ports if p.lid is not None}


class ObservedPort(Frozen):
    """One port's programmed PKey table as read from the fabric."""

    guid: str
    node_name: str
    node_type: str = Field(description="CA, SW (port 0) or RT.")
    lid: int | None
    port: int
    pkeys: tuple[str, ...] | None = Field(
        description="Non-empty PKey table entries as read (0x8a01 = full, 0x0a01 = limited); "
        "None when the table was not read."
    )

    def table(self) -> dict[int, int] | None:
        """The PKey table as the partition-table model reads it, None when it was not read."""
        return None if self.pkeys is None else table_from_values(int(v, 16) for v in self.pkeys)


class PathAnswer(Frozen):
    """One SA PathRecord query: the PKey the SA chose, or None when it returned no path."""

    slid: int
    dlid: int
    pkey: str | None


class ObservedFabric(Frozen):
    """One subnet as the diag tools saw it."""

    sm_guid: str | None = None
    sm_lid: int | None = None
    sm_state: str | None = None
    ports: tuple[ObservedPort, ...] = ()
    paths: tuple[PathAnswer, ...] = ()

    def subnet(self) -> SubnetPorts:
        """The observed subnet's ports."""
        kinds = {"CA": PortType.CA, "SW": PortType.SWITCH, "RT": PortType.ROUTER}
        sm = int(self.sm_guid, 16) if self.sm_guid else None
        return SubnetPorts({int(p.guid, 16): kinds[p.node_type] for p in self.ports}, sm)

    def tables(self) -> dict[int, dict[int, int]]:
        """Port GUID -> observed table, for the ports whose table was read."""
        out = {}
        for port in self.ports:
            table = port.table()
            if table is not None:
                out[int(port.guid, 16)] = table
        return out


def _bad(source: str, line: int, what: str) -> InputError:
    return InputError(what, location=SourceLocation(source, line))


_NODE = re.compile(r'^(Switch|Ca|Rt)\s+(\d+)\s+"([^"]*)"\s*(?:#\s*"([^"]*)"(.*))?$')
_GUID_LINE = re.compile(r"^(switchguid|caguid|rtguid)=0x([0-9a-fA-F]+)(?:\(([0-9a-fA-F]+)\))?")
_SW_PORT = re.compile(r"^\[(\d+)\]")
_CA_PORT = re.compile(r"^\[(\d+)\]\(([0-9a-fA-F]+)\)")
_CA_LID = re.compile(r"#\s*lid\s+(\d+)")
_BASE_LID = re.compile(r"base port 0 lid (\d+)")
_PORTS_LINE = re.compile(r"^(CA|SW|RT)\s+(\d+)\s+(\d+)\s+0x([0-9a-fA-F]+)\s")
_PORTS_NAME = re.compile(r"'([^']*)'")


def parse_ibnetdiscover(text: str, source: str = "<ibnetdiscover>") -> Topology:
    """End ports from ``ibnetdiscover`` (topology format) or ``ibnetdiscover -p``."""
    lines = text.splitlines()
    if any(_PORTS_LINE.match(line.strip()) for line in lines[:50] if line.strip()):
        return _parse_ports_format(lines, source)
    ports: list[TopologyPort] = []
    node_kind: str | None = None
    node_guid = port0_guid = 0
    name = ""
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := _GUID_LINE.match(line):
            node_guid = int(m.group(2), 16)
            port0_guid = int(m.group(3), 16) if m.group(3) else node_guid
            continue
        if m := _NODE.match(line):
            node_kind = m.group(1)
            name = m.group(4) or m.group(3)
            if node_kind == "Switch":
                lid = _BASE_LID.search(m.group(5) or "")
                ports.append(
                    TopologyPort(
                        guid=port0_guid,
                        node_guid=node_guid,
                        node_type=PortType.SWITCH,
                        node_name=name,
                        port=0,
                        lid=int(lid.group(1)) if lid else None,
                    )
                )
            continue
        if node_kind in ("Ca", "Rt") and line.startswith("["):
            m = _CA_PORT.match(line)
            if not m:
                raise _bad(source, number, f"unexpected ibnetdiscover port line: {line!r}")
            lid_match = _CA_LID.search(line)
            ports.append(
                TopologyPort(
                    guid=int(m.group(2), 16),
                    node_guid=node_guid,
                    node_type=PortType.CA if node_kind == "Ca" else PortType.ROUTER,
                    node_name=name,
                    port=int(m.group(1)),
                    lid=int(lid_match.group(1)) if lid_match else None,
                )
            )
    if not ports:
        raise _bad(
            source, 1, "no ibnetdiscover nodes found (expected Switch/Ca blocks or -p lines)"
        )
    return Topology(ports=tuple(ports))


def _parse_ports_format(lines: list[str], source: str) -> Topology:
    seen: dict[int, TopologyPort] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _PORTS_LINE.match(line)
        if not m:
            raise _bad(source, number, f"unexpected ibnetdiscover -p line: {line!r}")
        kind, lid, port, guid = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4), 16)
        named = _PORTS_NAME.search(line)
        name = named.group(1) if named else guid_text(guid)
        if kind == "SW":
            # -p lists a switch's external ports; its end port is port 0 (the node GUID).
            port0 = TopologyPort(
                guid=guid,
                node_guid=guid,
                node_type=PortType.SWITCH,
                node_name=name,
                port=0,
                lid=lid,
            )
            seen.setdefault(guid, port0)
        else:
            seen[guid] = TopologyPort(
                guid=guid,
                node_guid=guid,
                node_type=_TYPES[kind.lower()],
                node_name=name,
                port=port,
                lid=lid,
            )
    return Topology(ports=tuple(seen.values()))


_PKEY_HEADER = re.compile(r"^#+\s*smpquery\s+(?:\S+\s+)*?pkeys\s+(\d+)\s+(\d+)")
_PKEY_ROW = re.compile(r"^\s*\d+:\s+((?:0x[0-9a-fA-F]{4}\s*)+)$")


def parse_pkey_dump(
    text: str, source: str = "<smpquery pkeys>"
) -> dict[tuple[int, int], list[int]]:
    """(LID, port) -> raw 16-bit PKey entries (all blocks, empty slots included)."""
    out: dict[tuple[int, int], list[int]] = {}
    current: list[int] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if m := _PKEY_HEADER.match(raw.strip()):
            current = out.setdefault((int(m.group(1)), int(m.group(2))), [])
            continue
        if m := _PKEY_ROW.match(raw):
            if current is None:
                raise _bad(
                    source,
                    number,
                    "PKey table without a '# smpquery pkeys LID PORT' line before it",
                )
            current.extend(int(v, 16) for v in m.group(1).split())
    if not out:
        raise _bad(source, 1, "no '# smpquery pkeys LID PORT' sections found")
    return out


_PKTR_LID = re.compile(r"^\s*LID\.+(\d+)")
_PKTR_PORT = re.compile(r"^\s*Port\.+(\d+)")
_PKTR_ROW = re.compile(r"^\s*((?:0x[0-9a-fA-F]{4}\s*){8})$")


def parse_pktr(text: str) -> dict[tuple[int, int], list[int]]:
    """``saquery --smkey KEY PKTR LID/PORT/BLOCK`` records: (LID, port) -> entries."""
    out: dict[tuple[int, int], list[int]] = {}
    lid = port = None
    for raw in text.splitlines():
        if m := _PKTR_LID.match(raw):
            lid = int(m.group(1))
        elif m := _PKTR_PORT.match(raw):
            port = int(m.group(1))
        elif (m := _PKTR_ROW.match(raw)) and lid is not None and port is not None:
            out.setdefault((lid, port), []).extend(int(v, 16) for v in m.group(1).split())
    return out


_SA_QUERY = re.compile(r"^#+\s*saquery\b.*?(\d+):(\d+)\s*$")
_SA_FIELD = re.compile(r"^\s*(slid|dlid|pkey)\.+(\S+)")


def parse_pathrecords(text: str) -> list[PathAnswer]:
    """PathRecord dumps; a named query (``# saquery ... A:B``) with no dump = no path."""
    answers: list[PathAnswer] = []
    pending: tuple[int, int] | None = None
    record: dict[str, str] = {}

    def flush() -> None:
        nonlocal record
        if {"slid", "dlid", "pkey"} <= set(record):
            answers.append(
                PathAnswer(
                    slid=int(record["slid"], 0),
                    dlid=int(record["dlid"], 0),
                    pkey=f"0x{int(record['pkey'], 16):04x}",
                )
            )
        record = {}

    for raw in text.splitlines():
        if m := _SA_QUERY.match(raw.strip()):
            flush()
            if pending is not None and not _answered(answers, pending):
                answers.append(PathAnswer(slid=pending[0], dlid=pending[1], pkey=None))
            pending = (int(m.group(1)), int(m.group(2)))
        elif raw.strip().startswith("PathRecord dump"):
            flush()
        elif m := _SA_FIELD.match(raw):
            record[m.group(1)] = m.group(2)
    flush()
    if pending is not None and not _answered(answers, pending):
        answers.append(PathAnswer(slid=pending[0], dlid=pending[1], pkey=None))
    return answers


def _answered(answers: Iterable[PathAnswer], query: tuple[int, int]) -> bool:
    return any((a.slid, a.dlid) == query for a in answers)


_SMINFO = re.compile(r"sm lid (\d+) sm guid (0x[0-9a-fA-F]+).*?(SMINFO_\w+)?\s*$")


def parse_sminfo(text: str) -> tuple[int, int, str | None] | None:
    """(SM LID, SM port GUID, state) from ``sminfo``, or None."""
    for raw in text.splitlines():
        if m := _SMINFO.search(raw):
            return int(m.group(1)), int(m.group(2), 16), m.group(3)
    return None


def parse_guid2lid(text: str) -> dict[int, int]:
    """OpenSM's ``guid2lid`` cache: port GUID -> base LID."""
    out = {}
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) >= 2 and parts[0].startswith("0x"):
            out[int(parts[0], 16)] = int(parts[1], 16)
    return out


def observed_fabric(
    topology: Topology,
    pkey_dump: Mapping[tuple[int, int], list[int]],
    *,
    sm: tuple[int, int, str | None] | None = None,
    paths: Iterable[PathAnswer] = (),
    guid2lid: Mapping[int, int] | None = None,
) -> ObservedFabric:
    """Join the topology's end ports with the PKey tables read by (LID, port)."""
    ports = []
    for p in topology.ports:
        lid = p.lid if p.lid is not None else (guid2lid or {}).get(p.guid)
        entries = pkey_dump.get((lid, p.port)) if lid is not None else None
        kind = {PortType.CA: "CA", PortType.SWITCH: "SW", PortType.ROUTER: "RT"}[p.node_type]
        ports.append(
            ObservedPort(
                guid=guid_text(p.guid),
                node_name=p.node_name,
                node_type=kind,
                lid=lid,
                port=p.port,
                pkeys=None
                if entries is None
                else tuple(f"0x{v:04x}" for v in entries if v & 0x7FFF),
            )
        )
    return ObservedFabric(
        sm_guid=guid_text(sm[1]) if sm else None,
        sm_lid=sm[0] if sm else None,
        sm_state=sm[2] if sm else None,
        ports=tuple(ports),
        paths=tuple(paths),
    )
