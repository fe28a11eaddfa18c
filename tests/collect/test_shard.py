"""`--shard I/N`: a deterministic partition of targets by name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpufence.collect.shard import Shard, parse_shard
from gpufence.errors import InputError

NAMES = st.lists(st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True), unique=True)


@given(names=NAMES, count=st.integers(1, 9))
@settings(max_examples=60, deadline=None)
def test_every_name_is_in_exactly_one_shard(names: list[str], count: int) -> None:
    shards = [Shard(i, count).select(names, str) for i in range(count)]
    assert sorted(n for shard in shards for n in shard) == sorted(names)
    # Independent of the order the targets are listed in.
    assert [Shard(i, count).select(names[::-1], str)[::-1] for i in range(count)] == shards


def test_split_is_roughly_even_and_stable() -> None:
    names = [f"bmc-{i:05d}" for i in range(4000)]
    sizes = [len(Shard(i, 4).select(names, str)) for i in range(4)]
    assert all(900 < size < 1100 for size in sizes), sizes
    # Adding targets never moves an existing one to another shard.
    more = [*names, *(f"new-{i}" for i in range(100))]
    for i in range(4):
        assert set(Shard(i, 4).select(names, str)) <= set(Shard(i, 4).select(more, str))


@pytest.mark.parametrize("text", ["1", "4/4", "-1/4", "a/b", "1/0", "1 / 4", ""])
def test_bad_shards_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def test_good_shard() -> None:
    assert parse_shard("3/4") == Shard(3, 4) and str(parse_shard("0/1")) == "0/1"
