"""The located YAML loader: positions, YAML 1.2 booleans, duplicate keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence._yaml import load_yaml, pointer_to_text
from gpufence.errors import InputError

TEXT = """\
a:
  b: [1, 2]
  c:
    - name: x
      flag: on
    - name: y
      flag: true
country: NO
"""


def test_positions_of_values_and_keys(tmp_path: Path) -> None:
    doc = load_yaml(tmp_path / "f.yaml", TEXT)
    loc = doc.locate(("a", "c", 1, "name"))
    assert (loc.line, loc.column) == (6, 13)
    key = doc.locate(("a", "c", 1, "name"), key=True)
    assert (key.line, key.column) == (6, 7)
    # A pointer into something that does not exist falls back to the nearest ancestor.
    assert doc.locate(("a", "c", 0, "missing")).line == 4
    assert doc.locate(("nothing",)).line == 1


def test_yaml_12_booleans_only(tmp_path: Path) -> None:
    doc = load_yaml(tmp_path / "f.yaml", TEXT)
    assert doc.data["a"]["c"][0]["flag"] == "on"
    assert doc.data["a"]["c"][1]["flag"] is True
    assert doc.data["country"] == "NO"


def test_duplicate_key_is_an_error_at_the_second(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_yaml(tmp_path / "f.yaml", "a: 1\nb: 2\na: 3\n")
    assert info.value.location is not None and info.value.location.line == 3
    assert "first defined at line 1" in info.value.message


def test_syntax_error_has_position(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_yaml(tmp_path / "f.yaml", "a: [1, 2\nb: 3\n")
    assert info.value.location is not None and info.value.location.line is not None


def test_pointer_to_text() -> None:
    assert pointer_to_text(("node_pools", 0, "nodes", 1, "name")) == "node_pools[0].nodes[1].name"
    assert pointer_to_text(()) == "(document)"
