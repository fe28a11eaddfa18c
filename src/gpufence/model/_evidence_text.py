"""A finding's evidence kept as compact JSON text, for tables that must hold many findings.

A 10,000-BMC scan's ~290,000 findings held ~1.35 KB each as Python objects (their evidence
dicts and the observed values they reference), ~280 B each as JSON text. Only evidence that is
exactly JSON (dicts with str keys, lists, str, int, finite float, bool, None: each of exactly that
type) is turned into text, so reading it back gives an equal value of the same types.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["EvidenceText", "as_text", "from_text"]


_SCALARS = frozenset({str, int, bool, type(None)})


def _exactly_json(value: object) -> bool:
    # A loop over a stack rather than recursion: it runs once per finding of a fleet.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                return False
        elif kind is dict:
            mapping: dict[object, object] = item  # type: ignore[assignment]
            for key in mapping:
                if type(key) is not str:
                    return False
            stack.extend(mapping.values())
        elif kind is list:
            stack.extend(item)  # type: ignore[arg-type]
        else:
            return False
    return True


def as_text(evidence: dict[str, Any]) -> str | None:
    """``evidence`` as JSON text that :func:`from_text` turns back into an equal dict of the same
    types; None when it holds anything else (a tuple, an enum, a non-str key ...)."""
    if not _exactly_json(evidence):
        return None
    return json.dumps(evidence, separators=(",", ":"))


def from_text(text: str) -> dict[str, Any]:
    """The evidence dict :func:`as_text` wrote."""
    value: dict[str, Any] = json.loads(text)
    return value


class EvidenceText(Mapping[str, Any]):
    """Evidence kept as text, read as a mapping: decoded on the first look inside.

    What a table's rows give for compacted evidence: most walks over the rows (counts, sort
    keys, merging by cause) never look at the evidence and never pay for decoding it.
    """

    __slots__ = ("_text", "_value")

    def __init__(self, text: str) -> None:
        self._text = text
        self._value: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        if self._value is None:
            self._value = from_text(self._text)
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"EvidenceText({self._text!r})"
