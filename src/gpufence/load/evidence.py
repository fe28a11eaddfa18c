"""Read evidence files (JSON written by collectors) and enforce the evidence rules.

The rules are written down in docs/evidence.md. In short:

- a file that is not valid JSON, not a gpufence evidence document, or of an unknown schema version
  is an input error naming the file (exit 2) -- unless ``skip_bad``, when it is kept as a
  :class:`BadEvidence` and the audit reports it as an ERROR finding on its subject;
- a document dated in the future beyond :data:`CLOCK_SKEW` is rejected the same way (a clock that
  runs ahead would otherwise make its facts win over every newer observation);
- a document older than its age limit is *stale*: it is kept apart, and the facts it carries are
  unknown (NOT_EVALUATED naming the age) rather than observed;
- a document about a subject the inventory does not have (or spelled in another case), or carrying
  facts of the wrong kind for its subject, is an input error naming the closest subject.

Contradictions (two documents of the same time disagreeing on a fact) and ``not_observed``
entries are settled where facts are merged, in :class:`gpufence.model.snapshot.Snapshot`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from gpufence._yaml import decode_utf8
from gpufence.errors import InputError, SourceLocation
from gpufence.model.evidence import (
    EVIDENCE_SCHEMA,
    FACT_PREFIXES,
    EvidenceDocument,
    EvidenceFile,
    StaleEvidence,
)
from gpufence.model.inventory import Inventory

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_MAX_AGE",
    "BadEvidence",
    "EvidenceLoad",
    "EvidenceRules",
    "check_subjects",
    "json_lines",
    "load_evidence",
    "parse_age",
    "parse_max_ages",
]

DEFAULT_MAX_AGE = timedelta(days=7)
"""Evidence older than this (per subject kind overridable) says nothing about the cluster now."""

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a ``collected_at`` may lie (collector and auditor clocks differ)."""

_AGE = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """'7d', '12h', '30m', '90s', '2w' -> timedelta; InputError otherwise."""
    match = _AGE.match(text)
    if match is None:
        raise InputError(
            f"--max-evidence-age: {text!r} is not an age",
            hint="write a number and a unit: 90s, 30m, 12h, 7d, 2w",
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_max_ages(values: Sequence[str]) -> tuple[timedelta, dict[str, timedelta]]:
    """``--max-evidence-age`` values: 'AGE' (every plane) and 'KIND=AGE' (one subject kind).

    Returns the default limit and the per-kind overrides.
    """
    default = DEFAULT_MAX_AGE
    by_kind: dict[str, timedelta] = {}
    for value in values:
        kind, sep, age = value.partition("=")
        if not sep:
            default = parse_age(value)
            continue
        kind = kind.strip()
        if kind not in FACT_PREFIXES:
            close = difflib.get_close_matches(kind, list(FACT_PREFIXES), n=1)
            raise InputError(
                f"--max-evidence-age: unknown evidence kind {kind!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                hint="kinds are the subject prefixes: " + ", ".join(FACT_PREFIXES),
            )
        by_kind[kind] = parse_age(age)
    return default, by_kind


@dataclass(frozen=True)
class EvidenceRules:
    """How evidence is judged: the time 'now', the age limits and what to do with bad files."""

    now: datetime | None = None
    """The audit's 'now' (timezone-aware); None: the current time."""
    max_age: timedelta = DEFAULT_MAX_AGE
    max_age_by_kind: Mapping[str, timedelta] = field(default_factory=dict)
    """Overrides by subject kind ('node', 'bmc', 'cluster', ...)."""
    skip_bad: bool = False
    """Keep unreadable or rejected files as :class:`BadEvidence` instead of failing the run."""

    def limit_for(self, subject: str) -> timedelta:
        """The maximum age of evidence for ``subject`` (its kind's limit, else the default)."""
        return self.max_age_by_kind.get(subject.split("/", 1)[0], self.max_age)


@dataclass(frozen=True)
class BadEvidence:
    """An evidence file that was rejected and skipped (only with ``skip_bad``)."""

    file: str
    subject: str | None
    """Its subject when the document got far enough to name one."""
    error: InputError


@dataclass(frozen=True)
class EvidenceLoad:
    """Evidence documents read (with the file each came from) and files skipped as unreadable."""

    documents: tuple[tuple[EvidenceDocument, str], ...]
    """Each current document with the file it came from."""
    stale: tuple[StaleEvidence, ...] = ()
    """Documents older than their age limit: their facts are unknown."""
    bad: tuple[BadEvidence, ...] = ()
    """Files that were rejected and skipped (only with ``skip_bad``; else they raise)."""


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: no such evidence file or directory")
    return out


_SUBJECT_TEXT = re.compile(
    rb'"subject"\s*:\s*"((?:node|bmc|network|fabric|cluster|secrets|pool|site|storage|tenant)/[A-Za-z0-9._:-]{1,200})"'
)


def _subject_of(data: object, path: Path) -> str | None:
    """The subject a (possibly invalid) document names, for the ERROR finding of a skipped file.

    For a file that is not even JSON, the first ``"subject": "kind/name"`` in its bytes.
    """
    if data is None:
        try:
            with path.open("rb") as handle:
                match = _SUBJECT_TEXT.search(handle.read(1 << 20))
        except OSError:
            return None
        return match.group(1).decode() if match else None
    if isinstance(data, dict):
        if isinstance(data.get("subject"), str):
            return str(data["subject"])
        docs = data.get("evidence")
        if isinstance(docs, list) and docs and isinstance(docs[0], dict):
            subject = docs[0].get("subject")
            return subject if isinstance(subject, str) else None
    return None


def _schema_problem(data: object) -> str | None:
    """A message when a document declares a schema other than the one this version reads."""
    docs = data.get("evidence") if isinstance(data, dict) and "evidence" in data else [data]
    for doc in docs if isinstance(docs, list) else []:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if isinstance(schema, str) and schema != EVIDENCE_SCHEMA:
            if schema.startswith("gpufence.evidence/"):
                return (
                    f"unknown evidence schema version {schema!r}; this gpufence reads "
                    f"{EVIDENCE_SCHEMA!r} (upgrade gpufence, or re-collect with this version)"
                )
            return f"not a gpufence evidence document: schema is {schema!r}"
    return None


_SUFFIXES = (".json", ".jsonl")
"""Evidence files in a directory: JSON documents and JSON Lines (``scan bmc --out *.jsonl``)."""


def json_lines(path: Path) -> Iterator[object]:
    """The JSON value on each non-empty line of a JSON Lines file, read line by line."""
    try:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line.decode("utf-8"))
                except json.JSONDecodeError as exc:
                    raise InputError(
                        f"invalid JSON: {exc.msg}",
                        location=SourceLocation(path, number, exc.colno),
                    ) from exc
                except UnicodeDecodeError as exc:
                    column = len(line[: exc.start].decode("utf-8", errors="replace")) + 1
                    raise InputError(
                        f"not UTF-8 text: byte 0x{line[exc.start]:02x}",
                        location=SourceLocation(path, number, column),
                    ) from exc
    except (OSError, RecursionError) as exc:
        raise InputError(f"cannot read: {exc}", location=SourceLocation(path)) from exc


def _parse(path: Path) -> tuple[list[EvidenceDocument], object]:
    if path.suffix == ".jsonl":
        # One document per line: validated as one {"evidence": [...]} file of those lines.
        return _validated({"evidence": list(json_lines(path))}, path)
    try:
        data = json.loads(decode_utf8(path, path.read_bytes()))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON: {exc.msg}", location=SourceLocation(path, exc.lineno, exc.colno)
        ) from exc
    except (OSError, RecursionError) as exc:
        raise InputError(f"cannot read: {exc}", location=SourceLocation(path)) from exc
    return _validated(data, path)


def _validated(data: object, path: Path) -> tuple[list[EvidenceDocument], object]:
    if (problem := _schema_problem(data)) is not None:
        raise InputError(problem, location=SourceLocation(path))
    try:
        if isinstance(data, dict) and "evidence" in data:
            return list(EvidenceFile.model_validate(data).evidence), data
        return [EvidenceDocument.model_validate(data)], data
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise InputError(
            f"not a gpufence evidence document: {where}: {first['msg']}",
            location=SourceLocation(path),
            hint="evidence files are written by `gpufence collect` / `gpufence scan`",
        ) from exc


def _age(delta: timedelta) -> str:
    if delta >= timedelta(days=2):
        return f"{delta.days} days"
    if delta >= timedelta(hours=2):
        return f"{int(delta.total_seconds() // 3600)} hours"
    return f"{int(delta.total_seconds() // 60)} minutes"


def load_evidence(paths: Iterable[Path], rules: EvidenceRules | None = None) -> EvidenceLoad:
    """Read every evidence file under ``paths`` and apply the file-level evidence rules.

    Raises InputError for the first rejected file unless ``rules.skip_bad``.
    """
    rules = rules or EvidenceRules()
    now = rules.now or datetime.now(UTC)
    documents: list[tuple[EvidenceDocument, str]] = []
    stale: list[StaleEvidence] = []
    bad: list[BadEvidence] = []
    for path in _files(paths):
        data: object = None
        try:
            docs, data = _parse(path)
            for doc in docs:
                ahead = doc.collected_at - now
                if ahead > CLOCK_SKEW:
                    raise InputError(
                        f"{doc.subject}: collected_at {doc.collected_at.isoformat()} is "
                        f"{_age(ahead)} in the future (more than the {_age(CLOCK_SKEW)} of "
                        "clock skew allowed); fix the collector's clock and collect again",
                        location=SourceLocation(path),
                    )
        except InputError as exc:
            if not rules.skip_bad:
                raise
            bad.append(BadEvidence(str(path), _subject_of(data, path), exc))
            continue
        for doc in docs:
            age, limit = now - doc.collected_at, rules.limit_for(doc.subject)
            if age > limit:
                reason = (
                    f"evidence {path} ({doc.collector} at {doc.collected_at.isoformat()}) is "
                    f"{_age(age)} old, older than the {_age(limit)} allowed by "
                    "--max-evidence-age; collect it again"
                )
                stale.append(StaleEvidence(document=doc, origin=str(path), reason=reason))
            else:
                documents.append((doc, str(path)))
    return EvidenceLoad(tuple(documents), tuple(stale), tuple(bad))


def _subjects(inventory: Inventory) -> dict[str, set[str]]:
    """Every subject evidence may be about, by kind."""
    networks = {n.name for n in inventory.networks}
    return {
        "node": {n.name for p in inventory.node_pools for n in p.nodes},
        "pool": {p.name for p in inventory.node_pools},
        "bmc": {b.name for b in inventory.bmcs},
        "network": networks,
        "fabric": networks,
        "site": {s.name for s in inventory.sites},
        "storage": {s.name for s in inventory.storage},
        "tenant": {t.name for t in inventory.tenants},
        "secrets": {"key-release"},
        "cluster": {"kubernetes"},
    }


def _closest(subject: str, known: Iterable[str]) -> str | None:
    candidates = sorted(known)
    for candidate in candidates:
        if candidate.lower() == subject.lower():
            return candidate
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(subject.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def check_subjects(inventory: Inventory, documents: Iterable[tuple[EvidenceDocument, str]]) -> None:
    """InputError for evidence about a subject the inventory lacks, or with facts of another kind.

    Evidence that names no resource of the inventory would otherwise be dropped silently, and the
    resource it was meant for would be judged on its declaration alone.
    """
    by_kind = _subjects(inventory)
    every = [f"{kind}/{name}" for kind, names in by_kind.items() for name in names]
    for doc, origin in documents:
        kind, _, name = doc.subject.partition("/")
        if name not in by_kind.get(kind, set()):
            close = _closest(doc.subject, every)
            cased = close is not None and close.lower() == doc.subject.lower()
            raise InputError(
                f"evidence about {doc.subject!r}, which the inventory does not declare"
                + (
                    f" (subjects are case-sensitive: the inventory has {close!r})"
                    if cased
                    else (f"; did you mean {close!r}?" if close else "")
                ),
                location=SourceLocation(origin),
                hint="evidence subjects are resource paths of the inventory (node/NAME, bmc/NAME)",
            )
        prefixes = FACT_PREFIXES.get(kind)
        if prefixes is None:
            continue
        for fact in [*doc.observed, *(m.fact for m in doc.not_observed)]:
            if not fact.startswith(prefixes):
                owner = next(
                    (k for k, p in FACT_PREFIXES.items() if p and fact.startswith(p)), None
                )
                raise InputError(
                    f"evidence about {doc.subject!r} carries fact {fact!r}, which is not a "
                    f"{kind} fact (a {kind} subject carries "
                    + ", ".join(f"{p}*" for p in prefixes)
                    + ")"
                    + (f"; {fact!r} belongs to a {owner}/... subject" if owner else ""),
                    location=SourceLocation(origin),
                )
