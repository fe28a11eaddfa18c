"""A minimal, strict DER reader for the two certificate extensions we must look inside.

``cryptography`` hands unknown extensions over as raw bytes; the TCG DICE FWID structures
(CompositeDeviceID on Hopper, DiceTcbInfo on Blackwell) need a few levels of TLV walking and
nothing more, so a 40-line reader beats a new ASN.1 dependency. Only single-byte tags and
definite lengths are accepted (DER forbids the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tlv", "children", "read_single", "read_tlv"]

UNIVERSAL = 0
CONTEXT = 2


@dataclass(frozen=True, slots=True)
class Tlv:
    tag_class: int
    """0 universal, 1 application, 2 context-specific, 3 private."""
    constructed: bool
    number: int
    value: bytes
    encoded: bytes
    """The whole TLV (header + value), e.g. to re-parse an element as a SEQUENCE."""


def read_tlv(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Read one TLV at ``offset``; return it and the offset after it. ValueError when malformed."""
    if offset + 2 > len(data):
        raise ValueError(f"DER: truncated header at offset {offset}")
    first = data[offset]
    number = first & 0x1F
    if number == 0x1F:
        raise ValueError("DER: multi-byte tags are not supported")
    length = data[offset + 1]
    pos = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError(f"DER: bad length encoding at offset {offset}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError(f"DER: value at offset {offset} runs past the end")
    return (
        Tlv(first >> 6, bool(first & 0x20), number, data[pos:end], data[offset:end]),
        end,
    )


def read_single(data: bytes) -> Tlv:
    """Exactly one TLV spanning all of ``data``."""
    tlv, end = read_tlv(data)
    if end != len(data):
        raise ValueError(f"DER: {len(data) - end} trailing bytes")
    return tlv


def children(tlv: Tlv) -> list[Tlv]:
    """The TLVs inside a constructed element."""
    if not tlv.constructed:
        raise ValueError("DER: expected a constructed element")
    items = []
    offset = 0
    while offset < len(tlv.value):
        item, offset = read_tlv(tlv.value, offset)
        items.append(item)
    return items
