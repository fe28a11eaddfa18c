"""YAML loading that remembers where every value came from, and reads YAML 1.2 booleans.

PyYAML implements YAML 1.1, where ``on``, ``off``, ``yes``, ``no`` and the country code ``NO`` are
booleans: ``cc_mode: on`` would silently become ``True``. The loader here only treats
``true``/``false`` as booleans (YAML 1.2 core schema) and rejects duplicate keys, which PyYAML
accepts with last-one-wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gpufence.errors import InputError, SourceLocation

__all__ = [
    "LocatedDocument",
    "Pointer",
    "Yaml12Loader",
    "check_bounds",
    "decode_utf8",
    "index_positions",
    "line_column",
    "load_yaml",
    "pointer_to_text",
    "position_of",
    "unpack_position",
]

Pointer = tuple[str | int, ...]
"""A path into a document: mapping keys and sequence indexes."""


# libyaml's parser (CSafeLoader) when present: several times faster, same nodes and marks.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Yaml12Loader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans (true/false only)."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


MAX_ALIAS_USES = 1_000
"""An inventory may reuse an anchor for shared settings, but not thousands of times."""
MAX_AMPLIFICATION = 10
"""Aliases may make the expanded document at most this many times larger than the parsed one
(plus :data:`_AMPLIFICATION_SLACK` nodes): a billion-laughs document grows without bound."""
_AMPLIFICATION_SLACK = 10_000
MAX_DEPTH = 100
MAX_INT_DIGITS = 40
"""No field of any gpufence file needs more (a 128-bit GUID has 39 decimal digits)."""

MAX_EVENTS = 120_000
"""Parser events (about one per value) any file may hold, however small: a 2,000-node inventory
needs a tenth of it; a parsed value costs about 0.6 KB until the snapshot is built, so this bounds
the memory a small hostile file can cost."""
BYTES_PER_EVENT = 7
"""Files over ``MAX_EVENTS * BYTES_PER_EVENT`` (840 KB; fleet inventories: a 16,000-node one is
2.6 MB with one event per 8.4 bytes) may hold one event per this many bytes: memory stays
proportional to the input's size, and a file packed denser than any real inventory is still
refused. (The scaling once started only at 2 MB, which refused real 5,000-12,000-node fleets.)"""


def max_events(size: int) -> int:
    """How many parser events a file of ``size`` bytes may hold."""
    return max(MAX_EVENTS, size // BYTES_PER_EVENT)


_INT_TAG = "tag:yaml.org,2002:int"


def _count_events(text: str, path: Path) -> None:
    """Refuse a document with more events than :func:`max_events` allows, before building it."""
    limit = max_events(len(text))
    counter = Yaml12Loader(text)
    try:
        count = 0
        while counter.check_event():
            event = counter.get_event()
            count += 1
            if count > limit:
                mark = event.start_mark
                raise InputError(
                    f"more than {limit:,} YAML values in {len(text):,} characters: refused "
                    "(denser than any inventory)",
                    location=SourceLocation(path, mark.line + 1, mark.column + 1),
                )
    finally:
        counter.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _refuse(message: str, node: yaml.Node, path: Path) -> InputError:
    line, column = _mark(node)
    return InputError(message, location=SourceLocation(path, line, column))


def check_bounds(root: yaml.Node, path: Path) -> None:
    """Refuse alias bombs, recursive aliases, deep nesting and huge integers, cheaply.

    One iterative pass over the composed node graph (each distinct node once), computing the
    size the document would have with every alias expanded, before anything walks or builds it.
    """
    size: dict[int, int] = {}
    done: set[int] = set()
    distinct = 0
    uses = 0
    active: set[int] = set()  # nodes being expanded: the ancestors of the current one
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, leaving = stack.pop()
        key = id(node)
        if leaving:
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
            done.add(key)
            active.discard(key)
            if size[key] > MAX_AMPLIFICATION * distinct + _AMPLIFICATION_SLACK:
                raise _refuse(
                    f"aliases expand this document to more than {size[key]:,} values from "
                    f"{distinct:,} written (more than {MAX_AMPLIFICATION}x): refused",
                    node,
                    path,
                )
            continue
        if key in active:
            raise _refuse("a recursive alias (an anchor used inside itself)", node, path)
        if key in done:
            uses += 1
            if uses > MAX_ALIAS_USES:
                raise _refuse(
                    f"more than {MAX_ALIAS_USES} alias uses: refused (an inventory needs few)",
                    node,
                    path,
                )
            continue
        if depth > MAX_DEPTH:
            raise _refuse(f"nested more than {MAX_DEPTH} levels deep", node, path)
        distinct += 1
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            if node.tag == _INT_TAG and sum(c.isdigit() for c in value) > MAX_INT_DIGITS:
                raise _refuse(
                    f"an integer of {sum(c.isdigit() for c in value):,} digits (at most "
                    f"{MAX_INT_DIGITS})",
                    node,
                    path,
                )
            size[key] = 1
            done.add(key)
            continue
        active.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in reversed(_children(node)))


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def decode_utf8(path: Path, data: bytes) -> str:
    """UTF-8 text (a BOM allowed), or InputError at the line:column of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8-sig", errors="replace")
        line, column = line_column(good, len(good))
        raise InputError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            location=SourceLocation(path, line, column),
        ) from exc


class LocatedDocument:
    """A parsed document plus the 1-based line/column of every value (and of mapping keys)."""

    def __init__(
        self,
        path: Path,
        data: Any,
        values: Mapping[Pointer, Position],
        keys: Mapping[Pointer, Position],
    ) -> None:
        self.path = path
        self.data = data
        self._values = values
        self._keys = keys

    @property
    def value_positions(self) -> Mapping[Pointer, Position]:
        """Pointer -> packed (line, column) of every value (:func:`unpack_position`)."""
        return self._values

    def locate(self, pointer: Pointer, *, key: bool = False) -> SourceLocation:
        """Location of the value at ``pointer`` (or of its key), else of the nearest ancestor."""
        table = self._keys if key else self._values
        probe = tuple(pointer)
        while True:
            if probe in table:
                line, column = unpack_position(table[probe])
                return SourceLocation(self.path, line, column)
            if key and probe in self._values:
                line, column = unpack_position(self._values[probe])
                return SourceLocation(self.path, line, column)
            if not probe:
                return SourceLocation(self.path, 1, 1)
            probe = probe[:-1]


def pointer_to_text(pointer: Pointer) -> str:
    """``('node_pools', 0, 'nodes', 1)`` -> ``node_pools[0].nodes[1]``."""
    out = ""
    for part in pointer:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


Position = int
"""A 1-based (line, column) packed into one int, ``line << 32 | column``: a 64,000-node inventory
has ~1.4 million positions, and a tuple with its line number costs 84 bytes more than one int."""


def position_of(line: int, column: int) -> Position:
    """(line, column) -> :data:`Position`."""
    return line << 32 | column


def unpack_position(position: Position) -> tuple[int, int]:
    """:data:`Position` -> (line, column)."""
    return position >> 32, position & 0xFFFFFFFF


def _position(node: yaml.Node) -> Position:
    mark = node.start_mark
    return (mark.line + 1) << 32 | (mark.column + 1)


def index_positions(
    node: yaml.Node,
    pointer: Pointer,
    values: dict[Pointer, Position],
    keys: dict[Pointer, Position],
    path: Path,
) -> None:
    """Record the (line, column) of every value under ``node`` (and of mapping keys).

    Rejects duplicate and non-scalar keys with an :class:`InputError` naming the place.
    """
    values[pointer] = _position(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                raise InputError(
                    "mapping keys must be plain scalars",
                    location=SourceLocation(path, line, col),
                )
            key = str(key_node.value)
            if key in seen:
                line, col = _mark(key_node)
                first = seen[key]
                raise InputError(
                    f"duplicate key {key!r} (first defined at line {first[0]})",
                    location=SourceLocation(path, line, col),
                )
            seen[key] = _mark(key_node)
            keys[(*pointer, key)] = _position(key_node)
            index_positions(value_node, (*pointer, key), values, keys, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index_positions(item, (*pointer, i), values, keys, path)


def load_yaml(path: Path, text: str | None = None) -> LocatedDocument:
    """Parse one YAML document from ``path``; syntax errors become :class:`InputError`."""
    if text is None:
        try:
            text = decode_utf8(path, path.read_bytes())
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    loader = Yaml12Loader(text)
    try:
        _count_events(text, path)
        node = loader.get_single_node()
        if node is None:
            raise InputError("the file is empty", location=SourceLocation(path, 1, 1))
        check_bounds(node, path)
        values: dict[Pointer, Position] = {}
        keys: dict[Pointer, Position] = {}
        index_positions(node, (), values, keys, path)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = SourceLocation(path, mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", location=location) from exc
    except yaml.reader.ReaderError as exc:
        # Control characters and the like: the reader knows the character offset only.
        line, column = line_column(text, exc.position)
        raise InputError(
            f"invalid YAML: {exc.reason} (character {exc.character!r})",
            location=SourceLocation(path, line, column),
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", location=SourceLocation(path)) from exc
    finally:
        loader.dispose()
    return LocatedDocument(path, data, values, keys)
