"""Start-up: `gpufence --help` against a bare two-command typer app's `--help`, same run.

    .venv/bin/python bench/startup.py --runs 21 [--before DIR]

Baselines: the bare app with typer's defaults (rich help), and the same app with
``rich_markup_mode=None`` as gpufence uses (the stricter one). All run as fresh interpreters
(the same Python, the same typer), interleaved so that machine noise hits each alike; the
figure is the median wall time of N runs of each, and the ratio of the medians. Also times
`gpufence --version` and one command's `--help` (which imports its module).
Target (issue 14): `gpufence --help` <= 2x the bare app.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_APP = '''
import typer

app = typer.Typer(MARKUP)


@app.command()
def hello(name: str) -> None:
    """Say hello."""
    print(f"hello {name}")


@app.command()
def bye(name: str) -> None:
    """Say bye."""
    print(f"bye {name}")


app()
'''


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    """Print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument(
        "--before",
        type=Path,
        help="A src/ directory of an earlier gpufence (git archive REV src | tar -x -C DIR) to "
        "time as well",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE_APP.replace("MARKUP", ""), encoding="utf-8")
        plain = Path(tmp) / "bare_plain.py"
        plain.write_text(BARE_APP.replace("MARKUP", "rich_markup_mode=None"), encoding="utf-8")
        cases = {
            "bare typer app --help": [sys.executable, str(bare), "--help"],
            "bare, no rich --help": [sys.executable, str(plain), "--help"],
            "gpufence --help": [sys.executable, "-m", "gpufence", "--help"],
            "gpufence --version": [sys.executable, "-m", "gpufence", "--version"],
            "gpufence audit --help": [sys.executable, "-m", "gpufence", "audit", "--help"],
        }
        if args.before is not None:
            code = f"import sys; sys.path.insert(0, {str(args.before)!r}); import runpy; "
            code += "sys.argv = ['gpufence', '--help']; "
            code += "runpy.run_module('gpufence', run_name='__main__')"
            cases["before: gpufence --help"] = [sys.executable, "-c", code]
        for argv in cases.values():  # warm the page cache and .pyc files
            _time(argv)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                times[name].append(_time(argv))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
        f"Python {platform.python_version()}; {args.runs} runs each, interleaved"
    )
    base = statistics.median(times["bare typer app --help"])
    strict = statistics.median(times["bare, no rich --help"])
    for name, values in times.items():
        median = statistics.median(values)
        spread = f"{min(values) * 1000:.0f}-{max(values) * 1000:.0f}"
        print(
            f"{name:<24} median {median * 1000:6.0f} ms  (min-max {spread} ms)  "
            f"ratio {median / base:4.2f} (to no-rich bare: {median / strict:4.2f})"
        )


if __name__ == "__main__":
    main()
