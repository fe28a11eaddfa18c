"""Progress for long commands, on a terminal or not (docs/cli.md, "Progress").

On a terminal: a rich progress bar on stderr. Off a terminal (CI logs, cron, ``2> log``): a
plain line on stderr at most every ``GPUFENCE_PROGRESS_SECONDS`` (default 10) seconds, so a log
shows that a long run is alive and how far it got; short runs print nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["counter", "heartbeat", "interval"]


def interval() -> float:
    """Seconds between progress lines off a terminal (``GPUFENCE_PROGRESS_SECONDS``)."""
    try:
        return max(0.05, float(os.environ.get("GPUFENCE_PROGRESS_SECONDS", "10")))
    except ValueError:
        return 10.0


@contextmanager
def counter(label: str, total: int, bar: bool | None = None) -> Iterator[Callable[[], None]]:
    """Yield ``advance()``; show a bar (``bar`` True, default: stderr is a terminal) or lines.

    ``bar=False`` off a terminal still prints periodic lines: progress is never silent on a long
    run, only its form changes.
    """
    show_bar = sys.stderr.isatty() if bar is None else bar
    if show_bar:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task(label, total=total)
            yield lambda: progress.advance(task)
        return
    every = interval()
    start = time.monotonic()
    state = {"done": 0, "next": start + every}
    lock = threading.Lock()

    def advance() -> None:
        with lock:
            state["done"] += 1
            now = time.monotonic()
            if now >= state["next"] and state["done"] < total:
                state["next"] = now + every
                _line(f"{label}: {state['done']}/{total} ({now - start:.0f} s)")

    yield advance
    if time.monotonic() - start >= every:
        _line(f"{label}: {state['done']}/{total} done ({time.monotonic() - start:.0f} s)")


@contextmanager
def heartbeat(label: str) -> Iterator[None]:
    """While the block runs, print ``label: still running (N s)`` every interval on stderr.

    For a step that has no count to report (loading a large inventory, placing demand); a run
    shorter than one interval prints nothing.
    """
    every = interval()
    stop = threading.Event()
    start = time.monotonic()

    def beat() -> None:
        while not stop.wait(every):
            _line(f"{label}: still running ({time.monotonic() - start:.0f} s)")

    thread = threading.Thread(target=beat, name="gpufence-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _line(text: str) -> None:
    sys.stderr.write(f"gpufence: {text}\n")
    sys.stderr.flush()
