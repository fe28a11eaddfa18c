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
    "index_positions",
    "load_yaml",
    "pointer_to_text",
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


class LocatedDocument:
    """A parsed document plus the 1-based line/column of every value (and of mapping keys)."""

    def __init__(
        self,
        path: Path,
        data: Any,
        values: Mapping[Pointer, tuple[int, int]],
        keys: Mapping[Pointer, tuple[int, int]],
    ) -> None:
        self.path = path
        self.data = data
        self._values = values
        self._keys = keys

    @property
    def value_positions(self) -> Mapping[Pointer, tuple[int, int]]:
        """Pointer -> (line, column) of every value in the document."""
        return self._values

    def locate(self, pointer: Pointer, *, key: bool = False) -> SourceLocation:
        """Location of the value at ``pointer`` (or of its key), else of the nearest ancestor."""
        table = self._keys if key else self._values
        probe = tuple(pointer)
        while True:
            if probe in table:
                line, column = table[probe]
                return SourceLocation(self.path, line, column)
            if key and probe in self._values:
                line, column = self._values[probe]
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


def index_positions(
    node: yaml.Node,
    pointer: Pointer,
    values: dict[Pointer, tuple[int, int]],
    keys: dict[Pointer, tuple[int, int]],
    path: Path,
) -> None:
    """Record the (line, column) of every value under ``node`` (and of mapping keys).

    Rejects duplicate and non-scalar keys with an :class:`InputError` naming the place.
    """
    values[pointer] = _mark(node)
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
            keys[(*pointer, key)] = _mark(key_node)
            index_positions(value_node, (*pointer, key), values, keys, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index_positions(item, (*pointer, i), values, keys, path)


def load_yaml(path: Path, text: str | None = None) -> LocatedDocument:
    """Parse one YAML document from ``path``; syntax errors become :class:`InputError`."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read: {exc}") from None
    loader = Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError("the file is empty", location=SourceLocation(path, 1, 1))
        values: dict[Pointer, tuple[int, int]] = {}
        keys: dict[Pointer, tuple[int, int]] = {}
        index_positions(node, (), values, keys, path)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = SourceLocation(path, mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", location=location) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", location=SourceLocation(path)) from None
    finally:
        loader.dispose()
    return LocatedDocument(path, data, values, keys)
