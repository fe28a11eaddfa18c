"""Hostile YAML refused cheaply (issue 11): exit 2 with file:line:column, bounded cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpufence.cli import main

_BOMB_397 = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)

CASES: list[tuple[str, bytes, str, str]] = [
    ("alias bomb", _BOMB_397.encode(), "aliases expand this document", ":5:"),
    (
        "many aliases",
        ("a: &a 1\nb: [" + ",".join(["*a"] * 1500) + "]\n").encode(),
        "alias uses",
        ":1:4",  # the anchor that is used too often
    ),
    ("recursive alias", b"a: &a [1, *a]\n", "recursive alias", ":1:4"),
    ("huge integer", b"version: 1\nsites: " + b"9" * 100_000 + b"\n", "100,000 digits", ":2:8"),
    ("bad bytes", b"version: 1\norganization:\n  name: ab\xff\xfecd\n", "not UTF-8", ":3:11"),
    ("control char", b'version: 1\nname: "ab\x01"\n', "control characters", ":2:10"),
    ("deep nesting", b"x: " + b"[" * 150 + b"]" * 150 + b"\n", "nested", ":1:"),
    # A scalar its tag cannot build was a bare ValueError: exit 3, "internal error".
    ("impossible date", b"version: 1\nsites:\n  - since: 2026-13-45\n", "as a date", ":3:12"),
    ("bad binary integer", b"version: 0b_\n", "as an integer", ":1:10"),
    ("date in an aliased file", b"a: &x 1\nb: *x\nc: 2026-02-30\n", "day is out of range", ":3:4"),
]


@pytest.mark.parametrize(("label", "content", "words", "where"), CASES, ids=[c[0] for c in CASES])
def test_hostile_inventory_is_exit_2_with_a_location(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    label: str,
    content: bytes,
    words: str,
    where: str,
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(content)
    assert main(["audit", str(path)]) == 2, label
    err = capsys.readouterr().err
    assert words in err and f"{path}{where}" in err, err
    assert "Traceback" not in err


def _one_megabyte_inputs(tmp_path: Path) -> list[Path]:
    size = 1 << 20
    out = []
    lines = "".join(f"k{i}: v{i}\n" for i in range(70_000))
    flat = "x: [" + ",".join(["1"] * (size // 2)) + "]\n"
    seq = "".join(f"- {{a: {i}, b: [x, y]}}\n" for i in range(40_000))
    for name, text in (("map", lines), ("flat", flat), ("seq", seq), ("bomb", _BOMB_397 * 3100)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(("version: 1\n" + text)[:size])
        out.append(path)
    return out


def test_loading_any_one_megabyte_input_stays_under_200_mb(tmp_path: Path) -> None:
    """Peak RSS of `gpufence audit` on 1 MB hostile inventories, measured in a subprocess."""
    # VmHWM, not getrusage's ru_maxrss: Linux carries the forking parent's high-water mark across
    # exec into ru_maxrss, so a large pytest worker inflated the child's figure.
    probe = (
        "import json, re, sys\n"
        "from gpufence.cli import main\n"
        "code = main(['audit', sys.argv[1]])\n"
        "status = open('/proc/self/status').read()\n"
        "rss = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) / 1024\n"
        "print(json.dumps({'code': code, 'rss_mb': rss}))\n"
    )
    for path in _one_megabyte_inputs(tmp_path):
        assert path.stat().st_size > 900_000
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["code"] == 2, (path.name, done.stderr[-500:])
        assert result["rss_mb"] < 200, (path.name, result)
        assert str(path) in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("count", [12_000, 30_000], ids=["1.3MB", "3.4MB"])
def test_fleet_sized_inventory_loads_but_a_dense_file_of_that_size_is_refused(
    tmp_path: Path, count: int
) -> None:
    """The event cap scales with size past 840 KB: a 12,000- or 30,000-node inventory (one event
    per ~9 bytes, more events than the small-file cap) loads; a file of the same size packed
    with one-byte values does not. (12,000 nodes were refused while scaling began at 2 MB.)"""
    import yaml

    from gpufence._yaml import BYTES_PER_EVENT, MAX_EVENTS, load_yaml
    from gpufence.errors import InputError

    nodes = "".join(
        f"  - name: gpu-node-{i:05d}\n    bmc: gpu-node-{i:05d}-bmc\n"
        f"    pool: h100-sxm5-80gb-pool\n    tenants: [tenant-{i % 7}]\n"
        for i in range(count)
    )
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("nodes:\n" + nodes)
    size = fleet.stat().st_size
    assert size > MAX_EVENTS * BYTES_PER_EVENT
    loaded = load_yaml(fleet)
    assert len(loaded.data["nodes"]) == count
    events = sum(1 for _ in yaml.parse(fleet.read_text(), Loader=yaml.CSafeLoader))
    assert events > MAX_EVENTS  # more than a small file may hold
    dense = tmp_path / "dense.yaml"
    dense.write_text("- 1\n" * (size // 4 + 1000))
    with pytest.raises(InputError, match="denser than any inventory") as err:
        load_yaml(dense)
    assert err.value.location is not None and err.value.location.line is not None
