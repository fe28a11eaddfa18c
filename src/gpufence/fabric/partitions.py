"""OpenSM ``partitions.conf`` parser, faithful to OpenSM 3.3.23 (``opensm/osm_prtn_config.c``).

OpenSM's parser is C string surgery: it reads the file with ``fgets`` into a 4,096-byte buffer
(so lines longer than 4,094 bytes are split in two), cuts each piece at ``#``, writes NULs over
``;``, ``:``, ``,`` and ``=`` and walks the pieces with ``strchr``/``strlen``, matching keywords by
*prefix* (``strncmp(word, "ALL", strlen(word))``) and numbers with ``strtoul(..., 0)`` (so a
leading ``0`` means octal). Its quirks are the security story (the file fails open on any parse
error), so this module emulates that code step by step on a byte buffer rather than implementing
the documented grammar: whatever OpenSM reads, this reads, including the traps. Behaviours were
checked against OpenSM 3.3.23 on ibsim (see ``tests/integration/test_opensm.py`` and
``../shared/notes/fabric.md`` §1.3).

The result is a :class:`PartitionsConfig`: the statements as OpenSM understood them, the ordered
membership operations (to be applied to a subnet's ports by :mod:`gpufence.fabric.membership`),
OpenSM's own parse errors (any one of them makes OpenSM drop the whole file) and the events it only
logs at VERBOSE level (unknown flags, bad values), each with line and column.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from gpufence.errors import InputError, SourceLocation
from gpufence.fabric.partition_model import (
    DEFAULT_PKEY,
    FGETS_CHUNK,
    MemberKind,
    MemberOp,
    Membership,
    Multicast,
    OpensmEvent,
    ParseError,
    PartitionsConfig,
    Statement,
)

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
    "parse_partitions",
    "read_partitions",
]

_WS = b" \t\n"  # OpenSM's whitespace: not \r, not \v, not \f
_C_SPACE = b" \t\n\v\f\r"  # isspace() as strtoul sees it
_DIGITS = b"0123456789"


class _Error(Exception):
    def __init__(self, kind: str, message: str, pos: int, token: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.pos = pos
        self.token = token


_NUMBER = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")


def _strtoul(text: bytes) -> tuple[int, int]:
    """glibc ``strtoull(text, &end, 0)``: (value modulo 2**64, bytes consumed; 0 = no number).

    Base 0: ``0x`` hex (only when a hex digit follows), a leading ``0`` octal, else decimal;
    leading isspace() and a sign are accepted, a minus negates modulo 2**64, overflow clamps.
    """
    match = _NUMBER.match(text)
    if match is None:
        return 0, 0  # no digits: end = nptr
    sign, hexadecimal, octal, decimal = match.groups()
    if hexadecimal is not None:
        value = int(hexadecimal, 16)
    elif octal is not None:
        value = int(octal, 8)
    else:
        value = int(decimal)
    if value > 0xFFFF_FFFF_FFFF_FFFF:
        value = 0xFFFF_FFFF_FFFF_FFFF  # ERANGE: clamped, OpenSM does not check errno
    elif sign == b"-":
        value = (-value) % (1 << 64)
    return value, match.end()


# A continuation line holding only plain port items ("0x<hex>[=full|limited]", comma-separated,
# optionally ending the statement): by far the most common line, parsed without the C walk.
_FAST_ITEM = rb"0x[0-9a-fA-F]{1,16}(?:=(?:full|limited))?"
_FAST_LINE = re.compile(
    rb"[ \t]*" + _FAST_ITEM + rb"(?:[ \t]*,[ \t]*" + _FAST_ITEM + rb")*[ \t]*([,;]?)[ \t]*\n?"
)
_FAST_ITEMS = re.compile(rb"0x([0-9a-fA-F]{1,16})(?:=(full|limited))?")


def _prefix_of(word: bytes, keyword: bytes) -> bool:
    """``!strncmp(word, keyword, strlen(word))``: word is a prefix of keyword (empty matches)."""
    return keyword.startswith(word)


class _Conf:
    """``struct part_conf``: the statement being parsed (survives across lines until ';')."""

    __slots__ = (
        "column",
        "created",
        "defmember",
        "flags",
        "how",
        "indx0",
        "ipoib",
        "line",
        "members",
        "mgids",
        "mtu",
        "name",
        "pkey",
        "pkey_text",
        "rate",
    )

    def __init__(self) -> None:
        self.pkey: int | None = None  # p_prtn: None until the header was parsed
        self.ipoib = False
        self.indx0 = False
        self.defmember = Membership.LIMITED
        self.flags: list[tuple[str, str | None, int, int]] = []
        self.members: list[MemberOp] = []
        self.mgids: list[Multicast] = []
        self.name: str | None = None
        self.pkey_text: str | None = None
        self.how = "explicit"
        self.created = True
        self.line = 0
        self.column = 0
        self.mtu = 4  # OSM_DEFAULT_MGRP_MTU
        self.rate = 3  # OSM_DEFAULT_MGRP_RATE


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class _Parser:
    """The C functions of osm_prtn_config.c, on one persistent ``char line[4096]``."""

    def __init__(self, source: str, chunk: int) -> None:
        self.source = source
        self.buf = bytearray(chunk + 2)
        self.lineno = 0  # OpenSM's line counter (one per fgets piece)
        self.file_line = 0
        self.col_offset = 0
        self.pkeys: dict[int, str] = {DEFAULT_PKEY: "Default"}  # prtn_pkey_tbl: pkey -> name
        self.pkey_counter = 0
        self.statements: list[Statement] = []
        self.ops: list[MemberOp] = []
        self.errors: list[ParseError] = []
        self.events: list[OpensmEvent] = []
        self.has_default_rule = False
        self.parsed_any = False  # 3.3.23 fails open on a file without any statement, too

    # -- C string helpers on the buffer ---------------------------------------------------

    def strlen(self, i: int) -> int:
        return self.buf.index(0, i) - i

    def strchr(self, i: int, ch: int) -> int:
        end = self.buf.index(0, i)
        return self.buf.find(ch, i, end)

    def cstr(self, i: int) -> bytes:
        return bytes(self.buf[i : self.buf.index(0, i)])

    def col(self, pos: int) -> int:
        return self.col_offset + pos + 1

    def event(self, kind: str, message: str, pos: int, token: bytes) -> None:
        self.events.append(OpensmEvent(kind, message, self.file_line, self.col(pos), _text(token)))

    # -- parse_name_token -----------------------------------------------------------------

    def name_token(self, start: int) -> tuple[int, int, int | None]:
        """(consumed length, name position, value position or None); NULs written as in C."""
        buf = self.buf
        p = start
        while buf[p] in _WS and buf[p]:
            p += 1
        q = self.strchr(p, ord("="))
        if q >= 0:
            buf[q] = 0
            q += 1
        length = self.strlen(start) + 1
        value_start = q
        end = p + self.strlen(p)
        while end != p and (buf[end] == 0 or buf[end] in _WS):
            buf[end] = 0
            end -= 1
        if value_start < 0:
            return length, p, None
        v = value_start
        while buf[v] in _WS and buf[v]:
            v += 1
        end = v + self.strlen(v)
        length += (end - value_start) + 1
        while end != v and (buf[end] == 0 or buf[end] in _WS):
            buf[end] = 0
            end -= 1
        return length, p, v

    # -- flags ----------------------------------------------------------------------------

    def group_flag(self, flag: bytes, val: bytes | None, pos: int, conf: _Conf | None) -> bool:
        """``parse_group_flag``: True when the word (by prefix) is a group flag.

        (OpenSM itself returns "not processed" for Q_Key and TClass after setting them, and then
        logs them as unrecognized; that log line is noise, so they count as group flags here.)
        """
        for keyword in (b"mtu", b"rate", b"scope", b"Q_Key", b"TClass", b"sl", b"FlowLabel"):
            if _prefix_of(flag, keyword):
                break
        else:
            return False
        ok = True
        if val is None or not val:
            ok = False
        else:
            number, used = _strtoul(val)
            trailing = val[used:]
            if keyword in (b"mtu", b"rate", b"scope", b"Q_Key", b"TClass") and number == 0:
                ok = False
            if keyword == b"scope" and number > 0xF:
                ok = False
            if keyword == b"sl" and (number > 15 or (trailing and trailing[0] not in _C_SPACE)):
                ok = False
            if keyword == b"FlowLabel" and (
                number > 0xFFFFF or (trailing and trailing[0] not in _C_SPACE)
            ):
                ok = False
            if ok and conf is not None and keyword == b"mtu":
                conf.mtu = number
            if ok and conf is not None and keyword == b"rate":
                conf.rate = number
        if not ok:
            name = keyword.decode()
            self.event(
                "flag-value",
                f"flag '{name}' requires valid value - "
                + ("using '0'" if keyword in (b"Q_Key", b"TClass") else "skipped"),
                pos,
                flag + (b"=" + val if val is not None else b""),
            )
        return True

    def partition_flag(self, conf: _Conf, flag: bytes, val: bytes | None, pos: int) -> None:
        value = None if val is None else _text(val)
        conf.flags.append((_text(flag), value, self.file_line, self.col(pos)))
        if self.group_flag(flag, val, pos, conf):
            return
        if _prefix_of(flag, b"ipoib"):
            conf.ipoib = True
        elif _prefix_of(flag, b"indx0"):
            conf.indx0 = True
        elif _prefix_of(flag, b"defmember"):
            if val is None or not (
                _prefix_of(val, b"limited") or _prefix_of(val, b"both") or _prefix_of(val, b"full")
            ):
                self.event(
                    "flag-value",
                    "flag 'defmember' requires valid value (limited or full or both) - skipped",
                    pos,
                    flag + (b"=" + val if val is not None else b""),
                )
            elif _prefix_of(val, b"full"):
                conf.defmember = Membership.FULL
            elif _prefix_of(val, b"both"):
                conf.defmember = Membership.BOTH
            else:
                conf.defmember = Membership.LIMITED
        else:
            self.event(
                "unknown-partition-flag",
                f"unrecognized partition flag '{_text(flag)}' - ignored",
                pos,
                flag,
            )

    # -- partitions -----------------------------------------------------------------------

    def generate_pkey(self) -> int | None:
        while self.pkey_counter < DEFAULT_PKEY - 1:
            self.pkey_counter += 1
            if self.pkey_counter not in self.pkeys:
                return self.pkey_counter
        return None

    def partition_create(
        self, conf: _Conf, name: bytes | None, ident: bytes | None, pos: int
    ) -> bool:
        if ident is None and name and chr(name[0]).isdigit():
            ident, name = name, None
        if ident is not None:
            value, used = _strtoul(ident)
            if used == 0 or used != len(ident):
                return False
            pkey = value & 0xFFFF
            conf.pkey_text = _text(ident)
        else:
            pkey = 0
        conf.name = None if name is None else _text(name)
        pkey &= 0x7FFF  # osm_prtn_make_new: the membership bit is not part of the key
        if not pkey:
            found = next((k for k, v in self.pkeys.items() if name and v == conf.name), None)
            if found is not None:
                conf.pkey, conf.how, conf.created = found, "by-name", False
                return True
            generated = self.generate_pkey()
            if generated is None:
                return False
            pkey, conf.how = generated, "generated"
        if pkey in self.pkeys:
            conf.created = False
        else:
            self.pkeys[pkey] = conf.name or f"{pkey:04x}"
        conf.pkey = pkey
        if pkey == DEFAULT_PKEY:
            self.has_default_rule = True
        return True

    def add_port(self, conf: _Conf, name: bytes, flag: bytes | None, pos: int) -> None:
        """``partition_add_port``; raises _Error('bad-port-guid') like OpenSM returns -1."""
        if not name or _prefix_of(name, b"NONE"):
            return
        membership = conf.defmember
        if flag is not None:
            membership = Membership.LIMITED
            if _prefix_of(flag, b"full"):
                membership = Membership.FULL
            elif _prefix_of(flag, b"both"):
                membership = Membership.BOTH
            elif not _prefix_of(flag, b"limited"):
                self.event(
                    "unknown-port-flag",
                    f"unrecognized port flag '{_text(flag)}'. Assume 'limited'",
                    pos,
                    name + b"=" + flag,
                )
        guid: int | None = None
        if name[0] in _DIGITS:  # fast path: no keyword starts with a digit
            kind = MemberKind.GUID
            guid, used = _strtoul(name)
            if not guid or used != len(name):
                raise _Error("bad-port-guid", "bad PortGUID", pos, _text(name))
        elif _prefix_of(name, b"ALL"):
            kind = MemberKind.ALL
        elif _prefix_of(name, b"ALL_CAS"):
            kind = MemberKind.ALL_CAS
        elif _prefix_of(name, b"ALL_SWITCHES"):
            kind = MemberKind.ALL_SWITCHES
        elif _prefix_of(name, b"ALL_ROUTERS"):
            kind = MemberKind.ALL_ROUTERS
        elif _prefix_of(name, b"SELF"):
            kind = MemberKind.SELF
        else:
            kind = MemberKind.GUID
            guid, used = _strtoul(name)
            if not guid or used != len(name):
                raise _Error("bad-port-guid", "bad PortGUID", pos, _text(name))
        assert conf.pkey is not None
        token = name + (b"=" + flag if flag is not None else b"")
        op = MemberOp(
            conf.pkey,
            kind,
            guid,
            membership,
            self.file_line,
            self.col(pos),
            _text(token),
            None if flag is None else _text(flag),
        )
        conf.members.append(op)
        self.ops.append(op)

    def mgroup(self, conf: _Conf, rest: int, mgid: bytes | None, pos: int) -> int:
        """``mgroup_create``: the mgid, then group flags up to the end of the piece."""
        text = _text(mgid or b"")
        try:
            multicast = ipaddress.IPv6Address(text).packed[0] == 0xFF
        except ValueError:
            multicast = False
        conf.mgids.append(Multicast(text, self.file_line, self.col(pos), multicast))
        if not multicast:
            self.event(
                "mgid-not-multicast",
                f'mgid "{text}": gid is not multicast',
                pos,
                b"mgid=" + (mgid or b""),
            )
            return 0
        length = 0
        p = rest
        while True:  # parse_mgroup_flags
            q = self.strchr(p, ord(","))
            if q >= 0:
                self.buf[q] = 0
                q += 1
            ret, f_pos, v_pos = self.name_token(p)
            flag = self.cstr(f_pos)
            val = None if v_pos is None else self.cstr(v_pos)
            if not self.group_flag(flag, val, f_pos, None):
                self.event(
                    "unknown-mgroup-flag",
                    f"unrecognized mgroup flag '{_text(flag)}' - ignored",
                    f_pos,
                    flag,
                )
            p += ret
            length += ret
            if q < 0:
                return length

    # -- parse_part_conf ------------------------------------------------------------------

    def part_conf(self, conf: _Conf, start: int) -> int:
        buf = self.buf
        p = start
        if buf[p] in (ord("\t"), 0, ord("\n")):
            p += 1
        length = p - start
        body = p
        if conf.pkey is None:
            conf.line, conf.column = self.file_line, self.col(p)
            q = self.strchr(p, ord(":"))
            if q < 0:
                raise _Error(
                    "no-partition-definition",
                    "no partition definition found",
                    p,
                    _text(self.cstr(p)),
                )
            buf[q] = 0
            body = q + 1
            q = self.strchr(p, ord(","))
            if q >= 0:
                buf[q] = 0
            header_pos = p
            ret, n_pos, i_pos = self.name_token(p)
            name = self.cstr(n_pos)
            ident = None if i_pos is None else self.cstr(i_pos)
            p += ret
            length += ret
            while q >= 0:
                q = self.strchr(p, ord(","))
                if q >= 0:
                    buf[q] = 0
                    q += 1
                ret, f_pos, v_pos = self.name_token(p)
                flag = self.cstr(f_pos)
                val = None if v_pos is None else self.cstr(v_pos)
                p += ret
                length += ret
                self.partition_flag(conf, flag, val, f_pos)
            if p != body or not self.partition_create(conf, name, ident, header_pos):
                conf.pkey = None
                token = name + (b"=" + ident if ident is not None else b"")
                raise _Error(
                    "bad-partition-definition", "bad partition definition", header_pos, _text(token)
                )
        p = body
        while True:
            q = self.strchr(p, ord(","))
            if q >= 0:
                buf[q] = 0
                q += 1
            ret, n_pos, member_flag_pos = self.name_token(p)
            length += ret
            name = self.cstr(n_pos)
            member_flag = None if member_flag_pos is None else self.cstr(member_flag_pos)
            if name == b"mgid":
                return length + self.mgroup(conf, p + ret, member_flag, n_pos)
            self.add_port(conf, name, member_flag, n_pos)
            p += ret
            if q < 0:
                return length

    def fast_body(self, line: bytes, conf: _Conf) -> bool | None:
        """The items of a plain continuation line, exactly as the C walk would add them.

        None when the line is not of that shape (the caller then takes the C walk); otherwise
        whether the line ended the statement. Only used when the file has no ``mgid=`` item,
        the one construct that reads bytes beyond its own line (left over in the buffer).
        """
        match = _FAST_LINE.fullmatch(line)
        if match is None or conf.pkey is None:
            return None
        pkey, default, number, offset = (
            conf.pkey,
            conf.defmember,
            self.file_line,
            self.col_offset + 1,
        )
        memberships = {None: default, b"full": Membership.FULL, b"limited": Membership.LIMITED}
        ops = []
        guid_kind = MemberKind.GUID
        for item in _FAST_ITEMS.finditer(line):
            whole, digits, flag = item.group(0, 1, 2)
            guid = int(digits, 16)
            if not guid:
                return None  # GUID 0 is a parse error: let the C walk report it
            ops.append(
                MemberOp(
                    pkey,
                    guid_kind,
                    guid,
                    memberships[flag],
                    number,
                    offset + item.start(),
                    whole.decode("ascii"),
                    None if flag is None else flag.decode("ascii"),
                )
            )
        conf.members.extend(ops)
        self.ops.extend(ops)
        self.parsed_any = True
        if match.group(1) == b";":
            self.finish(conf, True)
            return True
        return False

    # -- osm_prtn_config_parse_file -------------------------------------------------------

    def finish(self, conf: _Conf, terminated: bool) -> None:
        if conf.pkey is None:
            return
        self.statements.append(
            Statement(
                line=conf.line,
                column=conf.column,
                name=conf.name,
                pkey_text=conf.pkey_text,
                pkey=conf.pkey,
                how=conf.how,
                created=conf.created,
                ipoib=conf.ipoib,
                indx0=conf.indx0,
                defmember=conf.defmember,
                flags=tuple(conf.flags),
                members=tuple(conf.members),
                mgids=tuple(conf.mgids),
                terminated=terminated,
            )
        )

    def piece(self, data: bytes, conf: _Conf | None, resync: bool) -> tuple[_Conf | None, bool]:
        """One fgets piece; returns the open statement and whether we skip to the next ';'."""
        n = len(data)
        self.buf[:n] = data
        self.buf[n] = 0
        hash_at = self.strchr(0, ord("#"))
        if hash_at >= 0:
            self.buf[hash_at] = 0
        p = 0
        while True:
            while self.buf[p] in _WS and self.buf[p]:
                p += 1
            if self.buf[p] == 0:
                return conf, resync
            semi = self.strchr(p, ord(";"))
            if resync:
                # After an error OpenSM stops; we skip to the next ';' to find further errors.
                if semi < 0:
                    return None, True
                p, resync = semi + 1, False
                continue
            if conf is None:
                conf = _Conf()
            if semi >= 0:
                self.buf[semi] = 0
            try:
                length = self.part_conf(conf, p)
            except _Error as err:
                self.errors.append(
                    ParseError(
                        err.kind,
                        f"PARSE ERROR: line {self.lineno}: {err.message}",
                        self.file_line,
                        self.col(err.pos),
                        self.lineno,
                        err.token,
                    )
                )
                if semi < 0:
                    return None, True
                p, conf = semi + 1, None
                continue
            self.parsed_any = True
            p += length
            if semi < 0:
                return conf, False
            self.finish(conf, True)
            conf = None
            if p >= len(self.buf) - 1:
                return None, False


def parse_partitions(
    data: bytes | str,
    source: str = "<partitions.conf>",
    *,
    chunk: int = FGETS_CHUNK,
    fast: bool = True,
) -> PartitionsConfig:
    """Parse ``data`` exactly as OpenSM 3.3.23 would (pure).

    ``chunk`` is the most bytes one read returns; only the linter changes it, to see what a long
    line would have meant had OpenSM read it whole. ``fast=False`` takes the C walk for every
    line (the tests check both give the same result).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fast = fast and b"mgid" not in raw
    parser = _Parser(source, chunk)
    conf: _Conf | None = None
    resync = False
    long_lines: list[tuple[int, int]] = []
    crlf: list[int] = []
    chunks: list[tuple[int, int]] = []
    # fgets splits at '\n' only (a lone '\r' is an ordinary byte to OpenSM).
    lines = [line + b"\n" for line in raw.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1] and len(lines) > 1:
        lines.pop()
    for number, physical in enumerate(lines, start=1):
        body = physical.rstrip(b"\n")
        if body.endswith(b"\r"):
            crlf.append(number)
        if len(body) > FGETS_CHUNK:
            long_lines.append((number, len(body)))
        physical = physical.split(b"\0", 1)[0] if b"\0" in physical else physical
        for offset in range(0, max(len(physical), 1), chunk):
            parser.lineno += 1
            parser.file_line = number
            parser.col_offset = offset
            chunks.append((number, offset))
            if fast and conf is not None and not resync and len(physical) <= chunk:
                ended = parser.fast_body(physical, conf)
                if ended is not None:
                    conf = None if ended else conf
                    continue
            conf, resync = parser.piece(physical[offset : offset + chunk], conf, resync)
    if conf is not None and not resync:
        parser.finish(conf, False)
    if not parser.errors and not parser.parsed_any:
        # OpenSM 3.3.23 logs "Partition configuration was not fully processed" and falls back.
        parser.errors.append(
            ParseError(
                "no-statement",
                "Partition configuration was not fully processed",
                1,
                1,
                parser.lineno,
                "",
            )
        )
    names = dict(parser.pkeys)
    return PartitionsConfig(
        source=source,
        statements=tuple(parser.statements),
        ops=tuple(parser.ops),
        errors=tuple(parser.errors),
        events=tuple(parser.events),
        names=names,
        physical_lines=tuple(long_lines),
        crlf_lines=tuple(crlf),
        has_default_rule=parser.has_default_rule,
        chunks=tuple(chunks),
    )


def read_partitions(path: Path, location: SourceLocation | None = None) -> PartitionsConfig:
    """Read and parse a partitions.conf; unreadable -> :class:`InputError` (exit 2)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read partitions.conf: {exc.strerror or exc}",
            location=location or SourceLocation(path),
        ) from exc
    return parse_partitions(data, str(path))
