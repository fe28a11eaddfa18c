"""Deterministic split of a scan's targets over N independent runs (``--shard I/N``).

A target belongs to shard ``sha256(name) mod N``: the split needs no coordination between the
runs (each may run on another host, e.g. one pod of a Kubernetes Indexed Job with
``--shard $JOB_COMPLETION_INDEX/N``), does not depend on the order targets are listed in, and
keeps a target in the same shard when others are added or removed. The shards' evidence files
together hold exactly one document per target; an audit given all of them (files or the
directories they were written to) sees the same evidence as an unsharded scan.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gpufence.errors import InputError

__all__ = ["Shard", "parse_shard"]

T = TypeVar("T")

_SHAPE = re.compile(r"^(\d{1,6})/(\d{1,6})$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def owns(self, name: str) -> bool:
        """Whether the target called ``name`` belongs to this shard."""
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, items: Sequence[T], name: Callable[[T], str]) -> list[T]:
        """The items of this shard, in their original order."""
        return [item for item in items if self.owns(name(item))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``I/N`` with ``0 <= I < N`` (0-based, like a Kubernetes ``JOB_COMPLETION_INDEX``)."""
    match = _SHAPE.match(text.strip())
    if match is None:
        raise InputError(
            f"--shard {text!r}: expected I/N, e.g. 0/4 (shards are numbered from 0 to N-1)"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise InputError(f"--shard {text!r}: I must be at least 0 and below N (N >= 1)")
    return Shard(index, count)
