"""``gpufence fabric lint``: every partitions.conf trap OpenSM 3.3.23 falls into (pure).

Each diagnostic names the line and column, what OpenSM will do with the text, and the fix.
Severities: ``error`` = OpenSM does not apply what the file says in a way that breaks isolation
(any parse error makes it drop the whole file and make every port a full member of the default
partition; two tenants merged into one PKey; the default partition granting every port full
membership); ``warning`` = OpenSM silently reads something else than was meant (octal GUIDs,
split long lines, prefix keywords, ``both`` without ``-W``, ignored flags); ``info`` = legal but
worth knowing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from enum import StrEnum

from pydantic import Field

from gpufence._frozen import Frozen
from gpufence.fabric.membership import FULL, PortType, SubnetPorts, program
from gpufence.fabric.partitions import (
    DEFAULT_PKEY,
    FGETS_CHUNK,
    MemberKind,
    MemberOp,
    Membership,
    PartitionsConfig,
    parse_partitions,
)

__all__ = [
    "FAIL_OPEN",
    "Diagnostic",
    "LintReport",
    "LintSeverity",
    "PartitionSummary",
    "lint",
    "lint_bytes",
]

FAIL_OPEN = (
    "OpenSM discards the whole file and applies Default=0x7fff : ALL=full instead: every port "
    "becomes a full member of the default partition (PKey 0xffff), every tenant PKey disappears "
    "and every host can reach every other host"
)
_FULL_DEFAULT = (
    "every port holds 0xffff, so every host can talk to every other host over the default "
    "partition regardless of the tenant partitions"
)


class LintSeverity(StrEnum):
    """How serious a partitions.conf diagnostic is: error, warning or info."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Order of severities: error 2, warning 1, info 0."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Diagnostic(Frozen):
    """One problem in a partitions.conf: where, what, what OpenSM will do, and the fix."""

    line: int
    column: int
    severity: LintSeverity
    code: str
    message: str
    consequence: str = Field(description="What OpenSM will do with this text.")
    fix: str


class PartitionMember(Frozen):
    member: str = Field(
        description="0x-GUID, or ALL / ALL_CAS / ALL_SWITCHES / ALL_ROUTERS / SELF."
    )
    membership: Membership


class PartitionSummary(Frozen):
    """One partition as the file declares it (members symbolic: no subnet is known here)."""

    pkey: str
    name: str
    lines: tuple[int, ...]
    ipoib: bool
    indx0: bool
    members: tuple[PartitionMember, ...] = Field(
        description="Members after later statements override earlier ones (as OpenSM without -W)."
    )


class LintReport(Frozen):
    """The lint of one partitions.conf: diagnostics, partitions and whether OpenSM fails open."""

    file: str
    fails_open: bool
    opensm_applies: str
    diagnostics: tuple[Diagnostic, ...]
    partitions: tuple[PartitionSummary, ...]

    def counts(self) -> dict[str, int]:
        """Diagnostics per severity (every severity present, zero when none)."""
        counter = Counter(d.severity.value for d in self.diagnostics)
        return {s.value: counter.get(s.value, 0) for s in LintSeverity}

    def worst(self) -> LintSeverity | None:
        """The most severe diagnostic's severity, None when clean."""
        ranked = sorted(self.diagnostics, key=lambda d: d.severity.rank, reverse=True)
        return ranked[0].severity if ranked else None


_KEYWORDS = ("ALL", "ALL_CAS", "ALL_SWITCHES", "ALL_ROUTERS", "SELF", "NONE")


def _d(
    sev: LintSeverity, code: str, line: int, column: int, message: str, consequence: str, fix: str
) -> Diagnostic:
    return Diagnostic(
        line=line,
        column=column,
        severity=sev,
        code=code,
        message=message,
        consequence=consequence,
        fix=fix,
    )


_ERR, _WARN, _INFO = LintSeverity.ERROR, LintSeverity.WARNING, LintSeverity.INFO


def _guid_advice(token: str) -> str:
    name = token.split("=", 1)[0].strip()
    if "\r" in token:
        return "the token ends in a carriage return (Windows line ending)"
    if ":" in name:
        return f"{name!r} is written with colons; OpenSM reads GUIDs as C numbers only"
    if name[:1] == "0" and name[1:2] not in ("x", "X") and len(name) > 1:
        return f"{name!r} has no 0x and a leading 0, so OpenSM reads it as octal (and fails)"
    if name and all(c in "0123456789abcdefABCDEF" for c in name):
        return f"{name!r} has hex digits but no 0x prefix"
    if name.startswith("0x") and len(name) <= 2:
        return "an empty 0x GUID"
    if name and name.isdigit() and int(name) == 0:
        return "GUID 0 is not a port"
    return f"{name!r} is not a port GUID, nor ALL, ALL_CAS, ALL_SWITCHES, ALL_ROUTERS, SELF or NONE"


def _parse_errors(config: PartitionsConfig) -> Iterator[Diagnostic]:
    fixes = {
        "no-partition-definition": "Every statement is 'Name=0xPKEY[,flags] : members ;'. Add the "
        "':' or remove the stray text or ';'.",
        "bad-partition-definition": "Write the header as 'Name=0x1234' (hex with 0x) followed by "
        "known flags (ipoib, indx0, defmember=full|limited|both, mtu=, rate=, sl=, scope=, "
        "Q_Key=, TClass=, FlowLabel=).",
        "bad-port-guid": "Write port GUIDs as 0x-prefixed hex (0x0002c90300a1b2c3), one per item, "
        "separated by ','; use 'Name=0x1234, defmember=full :' to set a default membership.",
        "no-statement": "Write at least 'Default=0x7fff, ipoib : ALL=limited, SELF=full ;' (an "
        "empty file is not 'no partitions': it fails open like a broken one).",
    }
    for i, err in enumerate(config.errors):
        what = {
            "no-partition-definition": "no ':' between the partition header and its members",
            "bad-partition-definition": f"bad partition header {err.token!r}",
            "bad-port-guid": f"bad port GUID: {_guid_advice(err.token)}",
            "no-statement": "the file holds no partition statement (empty or only comments)",
        }[err.kind]
        if err.kind == "no-statement":
            consequence = f"OpenSM logs '{err.message}'. {FAIL_OPEN}."
        elif i == 0:
            consequence = f"OpenSM logs '{err.message}' and stops. {FAIL_OPEN}."
        else:
            consequence = (
                f"Another parse error (OpenSM stops at the first, line {config.errors[0].line}); "
                "once that one is fixed, this one makes OpenSM fail open the same way."
            )
        message = f"parse error: {what}"
        yield _d(_ERR, "PC001", err.line, err.column, message, consequence, fixes[err.kind])


def _structure(config: PartitionsConfig) -> Iterator[Diagnostic]:
    if config.crlf_lines:
        yield _d(
            _ERR if config.fails_open else _WARN,
            "PC002",
            config.crlf_lines[0],
            1,
            f"Windows (CRLF) line endings on {len(config.crlf_lines)} line(s)",
            "OpenSM treats '\\r' as text, not whitespace: the '\\r' after a ';' is read as a new "
            "statement without ':' (parse error, fail-open), a GUID followed by '\\r' is a bad "
            "GUID, and '=full\\r' is read as an unknown flag, i.e. limited.",
            "Convert the file to Unix line endings (dos2unix) before OpenSM reads it.",
        )
    for line, length in config.physical_lines:
        yield _d(
            _WARN,
            "PC003",
            line,
            FGETS_CHUNK + 1,
            f"line is {length} bytes; OpenSM reads at most {FGETS_CHUNK} bytes at a time",
            f"OpenSM splits the line after byte {FGETS_CHUNK} and parses the two pieces as two "
            "lines; a token cut in two becomes a parse error (fail-open) or two wrong numbers "
            "(the member is silently lost).",
            "Split the member list over several statements with the same PKey (UFM's advice), "
            "or continue the statement on the next line: statements end at ';', not at newline.",
        )


def _long_line_losses(config: PartitionsConfig, data: bytes) -> Iterator[Diagnostic]:
    """Members OpenSM loses or misreads because of the 4,094-byte split (exact, by re-parsing)."""
    if not config.physical_lines:
        return
    longest = max(length for _, length in config.physical_lines) + 2
    whole = parse_partitions(data, config.source, chunk=longest)

    def key(op: MemberOp) -> tuple[int, str, int | None, str]:
        return (op.pkey, op.kind.value, op.guid, op.membership.value)

    real = Counter(key(op) for op in config.ops)
    meant = Counter(key(op) for op in whole.ops)
    lost, misread = meant - real, real - meant
    long_lines = {line for line, _ in config.physical_lines}
    for op in whole.ops:
        if op.line in long_lines and lost[key(op)] > 0:
            lost[key(op)] -= 1
            yield _d(
                _WARN if not config.fails_open else _INFO,
                "PC004",
                op.line,
                op.column,
                f"member {op.text!r} of PKey 0x{op.pkey:04x} is lost in the line split",
                "OpenSM never adds this port to the partition (no error is logged).",
                "Shorten the line (see PC003).",
            )
    for op in config.ops:
        if op.line in long_lines and misread[key(op)] > 0:
            misread[key(op)] -= 1
            yield _d(
                _WARN,
                "PC004",
                op.line,
                op.column,
                f"the line split makes OpenSM read member {op.text!r} of PKey 0x{op.pkey:04x}",
                "A fragment of a cut GUID is read as a different port GUID.",
                "Shorten the line (see PC003).",
            )


def _member_traps(config: PartitionsConfig, allow_both_pkeys: bool) -> Iterator[Diagnostic]:
    for op in config.ops:
        name = op.text.split("=", 1)[0]
        if op.kind is MemberKind.GUID:
            assert op.guid is not None
            if name[:2].lower() != "0x":
                octal = name[:1] == "0" and len(name) > 1
                yield _d(
                    _WARN,
                    "PC010",
                    op.line,
                    op.column,
                    f"GUID {name!r} has no 0x prefix: OpenSM reads it as "
                    f"{'octal' if octal else 'decimal'} = 0x{op.guid:x}",
                    f"Port 0x{op.guid:x} is added instead; if that port does not exist the "
                    "intended port is silently not a member.",
                    f"Write the GUID as 0x{name.lstrip('0') or '0'} if it is hex.",
                )
        elif name not in _KEYWORDS:
            yield _d(
                _WARN,
                "PC011",
                op.line,
                op.column,
                f"{name!r} is read as {op.kind.value} (OpenSM matches keywords by prefix)",
                f"OpenSM adds {op.kind.value} ports, which may not be what an abbreviation or "
                "typo meant.",
                f"Write {op.kind.value} in full.",
            )
        if op.flag is not None:
            flag = op.flag
            if flag == "":
                yield _d(
                    _WARN,
                    "PC012",
                    op.line,
                    op.column,
                    f"empty membership after '=' in {op.text!r} means full",
                    "OpenSM matches '' as a prefix of 'full': the port becomes a full member.",
                    "Write =full or =limited explicitly.",
                )
            elif not any(k.startswith(flag) for k in ("full", "limited", "both")):
                yield _d(
                    _WARN,
                    "PC012",
                    op.line,
                    op.column,
                    f"unknown membership {flag!r} in {op.text!r} is read as limited",
                    "The port becomes a limited member (OpenSM logs this only at VERBOSE level).",
                    "Use =full, =limited or =both.",
                )
            elif flag not in ("full", "limited", "both"):
                yield _d(
                    _INFO,
                    "PC012",
                    op.line,
                    op.column,
                    f"abbreviated membership {flag!r} is read as {op.membership.value}",
                    f"OpenSM matches by prefix: the port is {op.membership.value}.",
                    f"Write ={op.membership.value}.",
                )
        if op.membership is Membership.BOTH and not allow_both_pkeys:
            yield _d(
                _WARN,
                "PC013",
                op.line,
                op.column,
                f"'both' membership for {op.text!r} needs OpenSM's -W/--allow_both_pkeys",
                "Without -W the port gets the full PKey only (verified on 3.3.23).",
                "Run OpenSM with allow_both_pkeys TRUE, or write =full / =limited.",
            )


def _header_traps(config: PartitionsConfig) -> Iterator[Diagnostic]:
    for event in config.events:
        if event.kind == "unknown-partition-flag":
            yield _d(
                _WARN,
                "PC020",
                event.line,
                event.column,
                f"unknown partition flag {event.token!r} is ignored",
                "OpenSM ignores it (logged at VERBOSE level only); a misspelt 'ipoib' means no "
                "IPoIB broadcast group for the partition.",
                "Use ipoib, indx0, defmember=, mtu=, rate=, sl=, scope=, Q_Key=, TClass=, "
                "FlowLabel=.",
            )
        elif event.kind == "flag-value":
            yield _d(
                _WARN,
                "PC021",
                event.line,
                event.column,
                f"{event.token!r}: {event.message}",
                "OpenSM keeps the default value (logged at VERBOSE level only).",
                "Give a valid number (mtu=4 is 2048, mtu=5 is 4096; rate=3 is 10 Gb/s).",
            )
        elif event.kind == "unknown-mgroup-flag":
            member_like = event.token.split("=", 1)[0].strip()
            if member_like[:2].lower() == "0x" or member_like in _KEYWORDS:
                yield _d(
                    _WARN,
                    "PC022",
                    event.line,
                    event.column,
                    f"{event.token!r} after an mgid= on the same line is not a member",
                    "An mgid= item consumes the rest of its line as multicast group flags: this "
                    "port is silently not added to the partition.",
                    "Put members on their own line (or before the mgid= item).",
                )
            else:
                yield _d(
                    _INFO,
                    "PC022",
                    event.line,
                    event.column,
                    f"text {event.token!r} is read as a multicast group flag and ignored",
                    "After an mgid= that ends the item list, OpenSM parses the rest of its line "
                    "buffer (including a comment) as group flags.",
                    "End mgid= items with explicit flags (',sl=0') or move the comment.",
                )
        elif event.kind == "mgid-not-multicast":
            yield _d(
                _WARN,
                "PC023",
                event.line,
                event.column,
                event.message,
                "OpenSM logs a PARSE ERROR but keeps the file; the group is not created.",
                "Use an IPv6 multicast GID (ff12:...).",
            )
    for st in config.statements:
        text = st.pkey_text
        if text is None:
            if st.how == "generated":
                yield _d(
                    _INFO,
                    "PC030",
                    st.line,
                    st.column,
                    f"partition {st.name or ''!r} has no PKey: OpenSM generates 0x{st.pkey:04x}",
                    "Generated PKeys depend on statement order and change when the file does.",
                    "Give every partition an explicit PKey.",
                )
            continue
        number = int(text, 0) if text[:2].lower() == "0x" or text == "0" else None
        if text[:1] == "0" and text[1:2] not in ("x", "X") and len(text) > 1:
            yield _d(
                _WARN,
                "PC031",
                st.line,
                st.column,
                f"PKey {text!r} has a leading 0 and no 0x: OpenSM reads it as octal "
                f"= 0x{st.pkey:04x}",
                f"The partition gets PKey 0x{st.pkey:04x}.",
                "Write PKeys as 0x-prefixed hex.",
            )
        value = number if number is not None else None
        if value is not None and (value > 0xFFFF or value & 0x8000):
            yield _d(
                _WARN,
                "PC032",
                st.line,
                st.column,
                f"PKey {text} has bits above the 15-bit key: OpenSM uses 0x{st.pkey:04x}",
                "The membership bit (0x8000) and anything above 16 bits are dropped silently; "
                + (
                    "0x8000 alone masks to 0, so a PKey is generated."
                    if st.how == "generated"
                    else "two partitions may end up on the same PKey."
                ),
                f"Write the 15-bit PKey (0x{st.pkey:04x}) and set membership per member.",
            )
    yield from _merges(config)


def _merges(config: PartitionsConfig) -> Iterator[Diagnostic]:
    first: dict[int, tuple[str | None, int]] = {}
    generated = {st.pkey: st for st in config.statements if st.how == "generated"}
    for st in config.statements:
        if st.pkey == DEFAULT_PKEY:
            continue
        if st.pkey not in first:
            first[st.pkey] = (st.name, st.line)
            continue
        name, line = first[st.pkey]
        if st.how == "by-name":
            continue
        if st.name != name:
            collision = st.pkey in generated and generated[st.pkey] is not st
            yield _d(
                _ERR,
                "PC033",
                st.line,
                st.column,
                f"partition {st.name!r} gets PKey 0x{st.pkey:04x}, already used by {name!r} "
                f"(line {line})" + (" whose PKey was generated" if collision else ""),
                f"OpenSM merges the two into one partition named {name!r}: their members "
                "share a PKey and full members of either reach all members of both.",
                "Give each partition its own PKey (or the same name if one partition is meant).",
            )


def _symbolic(config: PartitionsConfig) -> dict[int, dict[str, str]]:
    """pkey -> member -> membership, later statements overriding earlier (as without -W)."""
    parts: dict[int, dict[str, str]] = {pkey: {} for pkey in config.names}
    for op in config.ops:
        member = op.kind.value if op.guid is None else f"0x{op.guid:016x}"
        parts[op.pkey].pop(member, None)
        parts[op.pkey][member] = op.membership.value
    return parts


def _default_traps(config: PartitionsConfig) -> Iterator[Diagnostic]:
    if config.fails_open:
        return
    default_ops = [op for op in config.ops if op.pkey == DEFAULT_PKEY]
    where = (default_ops[0].line, 1) if default_ops else (1, 1)
    # Where the keywords leave an ordinary host port and the SM's port (SM on a host, or on a
    # switch) in the default partition, by replaying the file on a three-port model subnet.
    host, sm_host, sw, sm_sw = (0xF1F1_F1F1_F1F1_F100 + i for i in range(4))
    on_host = program(config, SubnetPorts({host: PortType.CA, sm_host: PortType.CA}, sm_host))
    on_switch = program(config, SubnetPorts({sw: PortType.CA, sm_sw: PortType.SWITCH}, sm_sw))
    tenants = [pkey for pkey in config.names if pkey != DEFAULT_PKEY]
    if on_host.tables[host].get(DEFAULT_PKEY, 0) & FULL:
        yield _d(
            _ERR if tenants else _WARN,
            "PC040",
            *where,
            "the default partition makes every host port a full member (ALL=full or ALL_CAS=full)",
            _FULL_DEFAULT
            + (
                "; the other partitions in this file isolate nothing"
                if tenants
                else "; there is no isolation at all"
            )
            + ".",
            "Write 'Default=0x7fff, ipoib : ALL=limited, SELF=full ;' (hosts limited, the SM "
            "full) and give each tenant its own PKey.",
        )
    elif config.has_default_rule and not (
        on_host.tables[sm_host].get(DEFAULT_PKEY, 0) & FULL
        and on_switch.tables[sm_sw].get(DEFAULT_PKEY, 0) & FULL
    ):
        yield _d(
            _WARN,
            "PC041",
            *where,
            "the Default rule does not keep the SM's own port full (no SELF=full)",
            "A Default rule overrides the SM's built-in full membership: the SM port becomes "
            "limited, nobody is a full member of 0x7fff and hosts cannot reach the SA over the "
            "default PKey (verified on 3.3.23).",
            "Add SELF=full to the Default rule.",
        )
    for op in default_ops:
        if op.kind is MemberKind.GUID and op.membership is not Membership.LIMITED:
            yield _d(
                _WARN,
                "PC042",
                op.line,
                op.column,
                f"port {op.text.split('=')[0]} is a full member of the default partition",
                "This port can talk to every port of the subnet over 0x7fff, across tenants.",
                "Keep host ports limited in Default; only the SM (SELF) needs full.",
            )


def _guid_overlaps(config: PartitionsConfig) -> Iterator[Diagnostic]:
    parts = _symbolic(config)
    full_in: dict[str, list[int]] = {}
    for pkey, members in parts.items():
        if pkey == DEFAULT_PKEY:
            continue
        for member, how in members.items():
            if member.startswith("0x") and how != Membership.LIMITED.value:
                full_in.setdefault(member, []).append(pkey)
    last_op = {(op.pkey, op.guid): op for op in config.ops if op.guid is not None}  # where to point
    for member, pkeys in full_in.items():
        if len(pkeys) < 2:
            continue
        op = last_op[(pkeys[1], int(member, 16))]
        listed = ", ".join(f"0x{p:04x} ({config.names.get(p, '?')})" for p in pkeys)
        yield _d(
            _WARN,
            "PC050",
            op.line,
            op.column,
            f"port {member} is a full member of {len(pkeys)} partitions: {listed}",
            "The port reaches every member of each of them; if they belong to different tenants "
            "it bridges the tenants (one host shared by two tenants).",
            "Give each port full membership in one tenant partition only; use limited "
            "membership for shared services.",
        )


def _misc(config: PartitionsConfig) -> Iterator[Diagnostic]:
    if config.statements and not config.statements[-1].terminated and not config.fails_open:
        last = config.statements[-1]
        yield _d(
            _INFO,
            "PC060",
            last.line,
            last.column,
            "the last statement has no terminating ';'",
            "OpenSM 3.3.23 still applies it; other tools (and a later append) may not.",
            "End every statement with ';'.",
        )
    for st in config.statements:
        for flag, value, line, column in st.flags:
            if "sl".startswith(flag) and flag and value not in (None, "0"):
                yield _d(
                    _INFO,
                    "PC061",
                    line,
                    column,
                    f"sl={value} is overridden to 0 unless OpenSM runs with QoS (-Q)",
                    "The partition's IPoIB group uses SL 0 without QoS.",
                    "Enable QoS or drop the sl= flag.",
                )


def lint(
    config: PartitionsConfig, data: bytes = b"", *, allow_both_pkeys: bool = False
) -> LintReport:
    """All diagnostics for a parsed file (``data`` = its bytes, for the long-line re-parse)."""
    diagnostics = [
        *_parse_errors(config),
        *_structure(config),
        *_long_line_losses(config, data),
        *_member_traps(config, allow_both_pkeys),
        *_header_traps(config),
        *_default_traps(config),
        *_guid_overlaps(config),
        *_misc(config),
    ]
    diagnostics.sort(key=lambda d: (d.line, d.column, -d.severity.rank, d.code))
    summaries = []
    lines: dict[int, list[int]] = {}
    flags: dict[int, tuple[bool, bool]] = {}
    for st in config.statements:
        lines.setdefault(st.pkey, []).append(st.line)
        ipoib, indx0 = flags.get(st.pkey, (False, False))
        flags[st.pkey] = (ipoib or st.ipoib, indx0 or st.indx0)
    for pkey, members in _symbolic(config).items():
        if pkey not in lines:
            continue  # the built-in Default when the file has no Default rule
        summaries.append(
            PartitionSummary(
                pkey=f"0x{pkey:04x}",
                name=config.names.get(pkey, f"{pkey:04x}"),
                lines=tuple(lines[pkey]),
                ipoib=flags[pkey][0],
                indx0=flags[pkey][1],
                members=tuple(
                    PartitionMember(member=m, membership=Membership(how))
                    for m, how in members.items()
                ),
            )
        )
    return LintReport(
        file=config.source,
        fails_open=config.fails_open,
        opensm_applies="Default=0x7fff : ALL=full (fallback)" if config.fails_open else "the file",
        diagnostics=tuple(diagnostics),
        partitions=tuple(summaries),
    )


def lint_bytes(
    data: bytes, source: str = "<partitions.conf>", *, allow_both_pkeys: bool = False
) -> LintReport:
    """Lint partitions.conf bytes (``source`` names it in the report)."""
    return lint(parse_partitions(data, source), data, allow_both_pkeys=allow_both_pkeys)
