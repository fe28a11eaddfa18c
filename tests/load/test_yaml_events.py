"""load_yaml builds from parser events; the node-tree loader it replaced is the reference.

Every outcome (the document, the positions of values and keys with their order, or the error
with its message and file:line:column) must be the one the node-tree loader gives.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence import _yaml
from gpufence._yaml import load_yaml
from gpufence.errors import InputError
from tests.conftest import REPO

PATH = Path("inv.yaml")


@contextmanager
def node_tree_only() -> Iterator[None]:
    """load_yaml as it was: every document through the node tree."""

    def refuse(*_: object) -> None:
        raise _yaml._NeedsNodeTree

    with mock.patch.object(_yaml, "_build_from_events", refuse):
        yield


@contextmanager
def events_only() -> Iterator[None]:
    """load_yaml that fails the test if it composes a node tree."""

    def refuse(*_: object) -> None:
        raise AssertionError("composed a node tree")

    with mock.patch.object(_yaml, "_build_from_node_tree", refuse):
        yield


def outcome(text: str) -> tuple[Any, ...]:
    """What load_yaml gives: the document (repr: 1, 1.0 and True differ) and both position
    tables in order, or the error."""
    try:
        doc = load_yaml(PATH, text)
    except InputError as exc:
        return ("InputError", exc.message, str(exc.location))
    return (repr(doc.data), list(doc.value_positions.items()), list(doc._keys.items()))


def same_as_node_tree(text: str) -> tuple[Any, ...]:
    got = outcome(text)
    with node_tree_only():
        want = outcome(text)
    assert got == want, text
    return got


CASES = {
    "plain": "a:\n  b: [1, 2]\n  c: {d: e}\n",
    "types": "i: 0x1F\no: 017\nu: 1_000\nsx: 1:20\nf: -1.5e+3\ninf: .inf\nnan: .NaN\n"
    "n: ~\ne:\nb: TRUE\nyes: on\nd: 2026-01-02\nt: 2026-01-02 03:04:05.5+01:00\nq: '1'\n",
    "scalar keys of every type": "1: a\n'2': b\nnull: c\n2026-01-02: d\ntrue: e\n1.5: f\n",
    "same built key twice": "~: a\nnull: b\n",
    "root scalar": "just text\n",
    "root sequence": "- 1\n- [2, {a: 3}]\n",
    "explicit document": "--- \n",
    "empty": "",
    "comments only": "# nothing\n",
    "duplicate key": "a: 1\nb:\n  c: 2\n  c: 3\na: 4\n",
    "non-scalar key": "? [1, 2]\n: x\n",
    "mapping key then duplicate": "{? {a: 1, a: 2} : x}\n",
    "huge integer": "a: 1\nb: " + "9" * 41 + "\n",
    "huge integer key": "9" * 50 + ": x\n",
    "forty digits": "a: " + "9" * 40 + "\n",
    "depth 100": "x: " + "[" * 99 + "]" * 99 + "\n",
    "depth 101": "x: " + "[" * 100 + "]" * 100 + "\n",
    "bound after duplicate": "a: 1\na: 2\nb: " + "[" * 120 + "]" * 120 + "\n",
    "bad date": "a: 2026-13-45\n",
    "bad dates: shallowest first": "x:\n  y: 2026-13-01\nz: 2026-02-30\n",
    "bad dates: document order": "x: 2026-02-30\nz: 2026-13-01\n",
    "bad binary integer": "a: 0b_\n",
    "bad date after duplicate": "a: 2026-13-45\na: 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "two documents, duplicate in the first": "a: 1\na: 2\n---\nb: &x 2\n",
    "two documents, syntax error in the second": "a: 1\n---\nb: [2\n",
    "syntax error after a duplicate": "a: 1\na: 2\nb: [1, 2\n",
    "tab": "a:\n\tb: 1\n",
    "control character": 'a: "x\x01"\n',
    "non-specific tag": "a: ! 12\nb: !!str 12\n",
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_every_case_is_the_node_trees_outcome(text: str) -> None:
    same_as_node_tree(text)


def test_errors_keep_their_order() -> None:
    """The cases above are not vacuous: each kind of error is seen, in the node tree's order."""
    assert "nested more than 100" in same_as_node_tree(CASES["bound after duplicate"])[1]
    assert "duplicate key 'a'" in same_as_node_tree(CASES["bad date after duplicate"])[1]
    assert "found another document" in same_as_node_tree(CASES["two documents"])[1]
    assert same_as_node_tree(CASES["two documents, syntax error in the second"])[2].endswith(":4:1")
    # A scalar its tag cannot build is an input error at that scalar (it was a bare ValueError:
    # exit 3, "internal error").
    assert same_as_node_tree(CASES["bad dates: shallowest first"]) == (
        "InputError",
        "cannot read '2026-02-30' as a date: day is out of range for month",
        "inv.yaml:3:4",
    )
    assert same_as_node_tree(CASES["bad dates: document order"])[1].startswith(
        "cannot read '2026-02-30'"
    )
    assert same_as_node_tree(CASES["bad binary integer"])[1].startswith(
        "cannot read '0b_' as an integer"
    )
    assert "digits" in same_as_node_tree(CASES["huge integer key"])[1]
    assert same_as_node_tree(CASES["empty"])[1] == "the file is empty"


class _PurePythonYaml12Loader(yaml.SafeLoader):
    """Yaml12Loader as it is where PyYAML has no libyaml."""

    yaml_implicit_resolvers = _yaml.Yaml12Loader.yaml_implicit_resolvers


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_without_libyaml_too(text: str) -> None:
    with mock.patch.object(_yaml, "Yaml12Loader", _PurePythonYaml12Loader):
        same_as_node_tree(text)


ANCHORED = {
    "anchor and aliases": "base: &b {gpus: 8, tenants: [a, b]}\nx: *b\ny: [*b, *b]\n",
    "merge key": "base: &b {gpus: 8}\nx:\n  <<: *b\n  name: n\n",
    "explicit tags": "a: !!str 12\nb: !!float 1\n",
    "value tag": "a: =\n",
    "undefined alias": "a: *nothing\n",
    "recursive alias": "a: &a [1, *a]\n",
    "alias uses": "a: &a 1\nb: [" + ",".join(["*a"] * 1_500) + "]\n",
    "alias bomb": 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in pairwise("abcdefghi")),
    "unknown tag": "a: !thing x\n",
}


@pytest.mark.parametrize("text", ANCHORED.values(), ids=ANCHORED.keys())
def test_anchors_aliases_and_tags_go_to_the_node_tree(text: str) -> None:
    loader = _yaml.Yaml12Loader(text)
    try:
        with pytest.raises(_yaml._NeedsNodeTree):
            _yaml._build_from_events(loader, text, PATH)
    finally:
        loader.dispose()
    same_as_node_tree(text)


def test_aliases_resolve_and_stay_bounded() -> None:
    doc = load_yaml(PATH, ANCHORED["anchor and aliases"])
    assert doc.data["x"] == {"gpus": 8, "tenants": ["a", "b"]}
    assert doc.data["y"][1] is doc.data["x"]
    # An alias's values are located where the anchored ones are written.
    assert str(doc.locate(("y", 0, "tenants", 1))) == str(doc.locate(("base", "tenants", 1)))
    with pytest.raises(InputError, match="aliases expand this document"):
        load_yaml(PATH, ANCHORED["alias bomb"])
    with pytest.raises(InputError, match="alias uses"):
        load_yaml(PATH, ANCHORED["alias uses"])


def test_an_anchor_at_the_end_of_a_long_document_still_goes_to_the_node_tree() -> None:
    text = "".join(f"k{i}: {{a: {i}}}\n" for i in range(3_000)) + "z: &z [1]\nw: *z\n"
    got = same_as_node_tree(text)
    assert "'w': [1]" in got[0]


def _inventories() -> Iterator[tuple[str, str]]:
    yield "neocloud", (REPO / "examples/neocloud/inventory.yaml").read_text()
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from fleet import fleet
    finally:
        sys.path.remove(str(REPO / "bench"))
    for nodes in (1, 500, 2_000):
        yield f"fleet {nodes}", yaml.safe_dump(fleet(nodes), sort_keys=False)


def test_real_inventories_are_built_from_events_alike() -> None:
    for name, text in _inventories():
        with events_only():
            got = outcome(text)
        with node_tree_only():
            want = outcome(text)
        assert got == want, name
        assert len(got[1]) > 100, name  # positions, not an error


_SCALARS = [
    "a", "b c", "1", "-7", "0x1F", "0o7", "017", "0b101", "0b_", "1_000", "1:20", "1.5", "-.5e+3",
    ".inf", ".NaN", "~", "null", "", "true", "False", "on", "NO", "2026-01-02", "2026-13-45",
    "2026-02-30", "2026-01-02T03:04:05Z", "2026-01-02 03:04:05.25 +25:00", "'1'", '"x\\ty"',
    "9" * 41, "! 1", "[", "}", "a: b", "- x", "'unterminated",
]  # fmt: skip
_KEYS = ["a", "b", "1", "'1'", "~", "null", "2026-01-02", ".nan", "x y", "[k]", "{k: v}"]
_NODE_TREE_ONLY = ["&x a", "*x", "!!str 1", "<<", "="]  # the node tree's, in one document of 4


def _render(value: Any, indent: int, flow: bool) -> str:
    """YAML text of a tree of strings (scalars as written), lists and tuples of pairs (mappings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if flow or not value:
            return "[" + ", ".join(_render(v, 0, True) for v in value) + "]"
        pad = " " * indent
        return "".join(f"\n{pad}- {_render(v, indent + 2, False)}" for v in value)
    if flow or not value:
        return "{" + ", ".join(f"{k}: {_render(v, 0, True)}" for k, v in value) + "}"
    pad = " " * indent
    return "".join(f"\n{pad}{k}: {_render(v, indent + 2, False)}" for k, v in value)


def _trees(scalars: list[str], keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.sampled_from(scalars),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.lists(st.tuples(st.sampled_from(keys), inner), max_size=4).map(tuple)
        ),  # a mapping
        max_leaves=20,
    )


_PLAIN_TREES = _trees(_SCALARS, _KEYS)
_ANY_TREES = _trees(_SCALARS + _NODE_TREE_ONLY, [*_KEYS, "&k a", "<<"])


@st.composite
def _documents(draw: st.DrawFn) -> str:
    trees = _ANY_TREES if draw(st.integers(0, 3)) == 0 else _PLAIN_TREES
    text = _render(draw(trees), 0, draw(st.booleans())).lstrip("\n") + "\n"
    if draw(st.booleans()):
        depth = draw(st.integers(95, 105))
        text += f"deep: {'[' * depth}{']' * depth}\n"
    if draw(st.integers(0, 5)) == 0:
        text += "---\n" + _render(draw(_ANY_TREES), 0, True) + "\n"
    if draw(st.integers(0, 4)) == 0 and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(["\t", ":", "- ", "\n  ", "\x01", "'"])) + text[at:]
    return text


@settings(max_examples=400, deadline=None)
@given(_documents())
def test_generated_documents_are_the_node_trees_outcome(text: str) -> None:
    same_as_node_tree(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("- 1\n" * 130_000, "denser than any inventory"),
        ("a: [1, 2\n" + "- 1\n" * 130_000, "invalid YAML"),
        ("- 1\n" * 130_000 + "]\n", "denser than any inventory"),
    ],
    ids=["dense", "syntax error first", "too many events first"],
)
def test_a_refused_stream_is_never_built(text: str, words: str) -> None:
    """Too many events or a syntax error: refused from libyaml's own count, before any value is
    built (memory as small as the text), with the first error at its place."""

    def refuse(*_: object) -> None:
        raise AssertionError("built a document from a refused stream")

    with (
        mock.patch.object(_yaml, "_build_from_events", refuse),
        mock.patch.object(_yaml, "_build_from_node_tree", refuse),
    ):
        got = outcome(text)
    assert words in got[1]
    assert got == same_as_node_tree(text)
