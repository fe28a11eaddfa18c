"""YAML loading that remembers where every value came from, and reads YAML 1.2 booleans.

PyYAML implements YAML 1.1, where ``on``, ``off``, ``yes``, ``no`` and the country code ``NO`` are
booleans: ``cc_mode: on`` would silently become ``True``. The loader here only treats
``true``/``false`` as booleans (YAML 1.2 core schema) and rejects duplicate keys, which PyYAML
accepts with last-one-wins.

:func:`load_yaml` builds the document and the position of every value straight from libyaml's
parser events (:func:`_build_from_events`): no node tree, whose nodes and marks cost ~3 times the
document (a 64,000-node inventory: 225 MiB peak against 692 MiB, 2 s against 11 s). Anchors,
aliases and explicit tags, which gpufence files do not use, still go through the node tree
(:func:`_build_from_node_tree`), where :func:`check_bounds` measures what aliases expand to before
anything is expanded; it is also the reference the event builder is tested against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from sys import intern
from typing import Any

import yaml

from gpufence.errors import InputError, SourceLocation

__all__ = [
    "KubernetesYamlLoader",
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
    "unbuildable_scalar",
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


class KubernetesYamlLoader(Yaml12Loader):
    """Yaml12Loader without timestamps, for Kubernetes objects and the configs they embed.

    Kubernetes reads YAML as JSON (sigs.k8s.io/yaml), which has no date type: an unquoted
    ``2026-01-02`` in an annotation or a device-plugin config is the string the cluster sees (and
    ``2026-13-45`` is not an error).
    """


KubernetesYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in Yaml12Loader.yaml_implicit_resolvers.items()
}


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
needs a tenth of it; a parsed value costs about 0.2 KB until the snapshot is built (0.6 KB through
the node tree), so this bounds the memory a small hostile file can cost."""
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
                raise _too_many_events(limit, text, event, path)
    finally:
        counter.dispose()


def _check_stream(text: str, path: Path) -> None:
    """Refuse what :func:`_count_events` refuses, before anything is built.

    libyaml counts the events itself (no Python object per event: 0.1 s for a 64,000-node
    inventory); only a stream it cannot parse or one with too many events is read again by
    :func:`_count_events`, which raises the first error with its place.
    """
    if not hasattr(Yaml12Loader, "raw_parse"):  # PyYAML without libyaml
        _count_events(text, path)
        return
    counter = Yaml12Loader(text)
    try:
        events: int | None = counter.raw_parse()
    except yaml.YAMLError:
        events = None
    finally:
        counter.dispose()
    if events is None or events > max_events(len(text)):
        _count_events(text, path)


def _too_many_events(limit: int, text: str, event: yaml.Event, path: Path) -> InputError:
    mark: Any = event.start_mark
    return InputError(
        f"more than {limit:,} YAML values in {len(text):,} characters: refused "
        "(denser than any inventory)",
        location=SourceLocation(path, mark.line + 1, mark.column + 1),
    )


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
            child = (*pointer, key)  # one tuple for both tables
            keys[child] = _position(key_node)
            index_positions(value_node, child, values, keys, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index_positions(item, (*pointer, i), values, keys, path)


_STR_TAG = "tag:yaml.org,2002:str"
_BUILT_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "null", "bool", "int", "float", "timestamp")
)
"""The scalar tags :func:`_build_from_events` builds; any other leaves the file to the node tree."""
_NOT_A_KEY = ("", None, 0)
"""The pending key of a mapping whose key is a collection (an error is on its way)."""


class _NeedsNodeTree(Exception):
    """The document uses what only the node-tree loader handles.

    Anchors, aliases, explicit tags, and plain scalars SafeLoader resolves to another tag (the
    merge key ``<<``, ``=``): no gpufence file needs them, and the node tree is where
    :func:`check_bounds` measures what aliases expand to before anything is expanded.
    """


def _refuse_at(message: str, mark: Any, path: Path) -> InputError:
    return InputError(message, location=SourceLocation(path, mark.line + 1, mark.column + 1))


def _build_from_events(
    loader: Yaml12Loader, text: str, path: Path
) -> tuple[Any, dict[Pointer, Position], dict[Pointer, Position]]:
    """Build the document and its positions from parser events: no node tree in memory.

    Raises :class:`_NeedsNodeTree` at the first anchor, alias, explicit tag or other tag in the
    (first) document. Otherwise returns what :func:`_build_from_node_tree` returns and raises what
    it raises, in its order: errors of the event stream (syntax, :func:`max_events`) as they come;
    then, once the stream is read, a second document, an empty file, the first bound exceeded
    (depth, integer size: check_bounds meets them in document order), the first non-scalar or
    duplicate key (index_positions: document order), and the first scalar that fails to build in
    ``construct_document``'s breadth-first order (shallowest first, then document order). The
    positions are only returned when nothing failed.
    """
    limit = max_events(len(text))
    values: dict[Pointer, Position] = {}
    keys: dict[Pointer, Position] = {}
    bound_error: InputError | None = None
    key_error: InputError | None = None
    build_error: tuple[int, int, InputError] | None = None
    root_mark: Any = None
    second_document: Any = None
    data: Any = None
    # One frame per open collection: [container, pointer, depth, keys seen (raw key -> line; None
    # in a sequence), the pending key (raw text, built key, position) or None].
    stack: list[list[Any]] = []
    count = 0
    documents = 0
    get_event = loader.get_event
    resolve = loader.resolve
    constructors = loader.yaml_constructors
    scalar_event, mapping_start = yaml.ScalarEvent, yaml.MappingStartEvent
    while (event := get_event()) is not None:
        count += 1
        if count > limit:
            raise _too_many_events(limit, text, event, path)
        kind = event.__class__
        if documents > 1 and kind is not yaml.DocumentStartEvent:
            continue  # the node-tree loader composes the first document only
        if kind is scalar_event or kind is mapping_start or kind is yaml.SequenceStartEvent:
            if event.anchor is not None or (event.tag is not None and event.tag != "!"):
                raise _NeedsNodeTree
            mark = event.start_mark
            line = mark.line + 1
            position = line << 32 | (mark.column + 1)
            frame = stack[-1] if stack else None
            pending: tuple[str, Any, Position] | None = None
            if frame is None:
                depth = 1
                pointer: Pointer = ()
                root_mark = mark
            else:
                depth = frame[2] + 1
                if frame[3] is None:
                    pointer = (*frame[1], len(frame[0]))
                else:
                    pending = frame[4]
                    frame[4] = None
                    # A key has no pointer of its own; a value shares its key's tuple.
                    pointer = frame[1] if pending is None else (*frame[1], pending[0])
            if depth > MAX_DEPTH and bound_error is None:
                bound_error = _refuse_at(f"nested more than {MAX_DEPTH} levels deep", mark, path)
            value: Any
            if kind is scalar_event:
                raw = event.value
                tag = resolve(yaml.ScalarNode, raw, event.implicit)
                if tag == _STR_TAG:
                    value = raw
                elif tag not in _BUILT_TAGS:
                    raise _NeedsNodeTree
                else:
                    value = None
                    digits = sum(c.isdigit() for c in raw) if tag == _INT_TAG else 0
                    if digits > MAX_INT_DIGITS:
                        if bound_error is None:
                            bound_error = _refuse_at(
                                f"an integer of {digits:,} digits (at most {MAX_INT_DIGITS})",
                                mark,
                                path,
                            )
                    else:
                        node = yaml.ScalarNode(tag, raw, mark, event.end_mark, event.style)
                        try:
                            value = constructors[tag](loader, node)
                        except Exception as exc:  # noqa: BLE001 - raised later, in its turn
                            if build_error is None or (depth, count) < build_error[:2]:
                                build_error = (depth, count, _unbuildable(node, exc, path))
                if frame is not None and frame[3] is not None and pending is None:  # a key
                    seen = frame[3]
                    if raw not in seen:
                        seen[raw] = line
                    elif key_error is None:
                        key_error = _refuse_at(
                            f"duplicate key {raw!r} (first defined at line {seen[raw]})",
                            mark,
                            path,
                        )
                    # Interned: the pointers of every node share one "name", one "bmc"...
                    raw = intern(raw)
                    frame[4] = (raw, raw if tag == _STR_TAG else value, position)
                    continue
            else:
                value = {} if kind is mapping_start else []
                if frame is not None and frame[3] is not None and pending is None:  # a key
                    if key_error is None:
                        key_error = _refuse_at("mapping keys must be plain scalars", mark, path)
                    frame[4] = _NOT_A_KEY
                    stack.append(
                        [value, pointer, depth, {} if kind is mapping_start else None, None]
                    )
                    continue
            values[pointer] = position
            if frame is None:
                data = value
            elif pending is None:
                frame[0].append(value)
            else:
                keys[pointer] = pending[2]
                frame[0][pending[1]] = value
            if kind is not scalar_event:
                stack.append([value, pointer, depth, {} if kind is mapping_start else None, None])
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            stack.pop()
        elif kind is yaml.AliasEvent:
            raise _NeedsNodeTree
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents == 2:
                second_document = event.start_mark
    if second_document is not None:
        raise yaml.composer.ComposerError(
            "expected a single document in the stream",
            root_mark,
            "but found another document",
            second_document,
        )
    if documents == 0:
        raise InputError("the file is empty", location=SourceLocation(path, 1, 1))
    if bound_error is not None:
        raise bound_error
    if key_error is not None:
        raise key_error
    if build_error is not None:
        raise build_error[2]
    return data, values, keys


def _build_from_node_tree(
    loader: Yaml12Loader, text: str, path: Path
) -> tuple[Any, dict[Pointer, Position], dict[Pointer, Position]]:
    """The reference loader: count events, compose the node tree, check it, index it, build it.

    Used for what :func:`_build_from_events` leaves to it (anchors, aliases, explicit tags, merge
    keys); the whole tree is in memory while the document is built.
    """
    _count_events(text, path)
    node = loader.get_single_node()
    if node is None:
        raise InputError("the file is empty", location=SourceLocation(path, 1, 1))
    check_bounds(node, path)
    values: dict[Pointer, Position] = {}
    keys: dict[Pointer, Position] = {}
    index_positions(node, (), values, keys, path)
    try:
        data = loader.construct_document(node)
    except yaml.YAMLError:
        raise
    except Exception as exc:
        raise unbuildable_scalar(loader, node, path) or exc from exc
    return data, values, keys


def _unbuildable(node: yaml.ScalarNode, exc: Exception, path: Path) -> InputError:
    """A scalar whose text its tag cannot build (``2026-13-45``, ``0b_``): an input error at it."""
    kind = node.tag.rsplit(":", 1)[-1]
    what = {"int": "an integer", "float": "a number", "timestamp": "a date"}.get(kind, kind)
    return _refuse_at(f"cannot read {node.value!r} as {what}: {exc}", node.start_mark, path)


def unbuildable_scalar(loader: Yaml12Loader, root: yaml.Node, path: Path) -> InputError | None:
    """The first scalar under ``root`` that ``loader`` fails to build (``0b_``), as an input
    error at it, in construct_document's order (breadth first); None if every scalar builds."""
    loader.constructed_objects, loader.recursive_objects = {}, {}  # left over from the failure
    level = [root]
    seen: set[int] = set()
    while level:
        below: list[yaml.Node] = []
        for node in level:
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                try:
                    loader.construct_object(node, deep=True)
                except yaml.YAMLError:
                    continue
                except Exception as exc:  # noqa: BLE001 - the error being located
                    return _unbuildable(node, exc, path)
            else:
                below += _children(node)
        level = below
    return None


def load_yaml(path: Path, text: str | None = None) -> LocatedDocument:
    """Parse one YAML document from ``path``; syntax errors become :class:`InputError`."""
    if text is None:
        try:
            text = decode_utf8(path, path.read_bytes())
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    loader: Yaml12Loader | None = None
    try:
        # Inside the try: without libyaml the reader refuses control characters right here.
        loader = Yaml12Loader(text)
        _check_stream(text, path)
        try:
            built = _build_from_events(loader, text, path)
        except _NeedsNodeTree:
            built = None
        if built is None:  # outside the except: the partial document is garbage by now
            loader.dispose()
            loader = Yaml12Loader(text)
            built = _build_from_node_tree(loader, text, path)
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
        if loader is not None:
            loader.dispose()
    data, values, keys = built
    return LocatedDocument(path, data, values, keys)
