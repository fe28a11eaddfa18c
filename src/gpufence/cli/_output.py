"""Writing command output to stdout or to ``--output FILE``."""

from __future__ import annotations

import sys
from pathlib import Path

from gpufence.errors import InputError


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (created/overwritten) or to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
