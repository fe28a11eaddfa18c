"""Read evidence files (JSON written by collectors) from files or directories.

One malformed file does not sink the audit: it is reported and skipped, and the facts it would
have carried stay unknown (controls say NOT_EVALUATED). A file that is not evidence at all
(wrong schema) is an input error, because the user pointed at the wrong thing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from gpufence.errors import InputError, SourceLocation
from gpufence.model.evidence import EvidenceDocument, EvidenceFile

__all__ = ["EvidenceLoad", "load_evidence"]


@dataclass(frozen=True)
class EvidenceLoad:
    """Evidence documents read (with the file each came from) and files skipped as unreadable."""

    documents: tuple[tuple[EvidenceDocument, str], ...]
    """Each document with the file it came from."""
    problems: tuple[InputError, ...]
    """Files that could not be read; they were skipped."""


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: no such evidence file or directory")
    return out


def _parse(path: Path) -> list[EvidenceDocument]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON: {exc.msg}", location=SourceLocation(path, exc.lineno, exc.colno)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", location=SourceLocation(path)) from None
    try:
        if isinstance(data, dict) and "evidence" in data:
            return list(EvidenceFile.model_validate(data).evidence)
        return [EvidenceDocument.model_validate(data)]
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise InputError(
            f"not a gpufence evidence document: {where}: {first['msg']}",
            location=SourceLocation(path),
            hint="evidence files are written by `gpufence collect` / `gpufence scan`",
        ) from None


def load_evidence(paths: Iterable[Path]) -> EvidenceLoad:
    """Read evidence files and directories; unreadable ones are reported in ``problems``, never
    fatal.
    """
    documents: list[tuple[EvidenceDocument, str]] = []
    problems: list[InputError] = []
    for path in _files(paths):
        try:
            documents.extend((doc, str(path)) for doc in _parse(path))
        except InputError as exc:
            problems.append(exc)
    return EvidenceLoad(tuple(documents), tuple(problems))
