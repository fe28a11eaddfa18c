"""Files the inventory points at (broker configuration, ...) read into evidence.

Controls never read files. When the inventory names a configuration file, this collector reads it
(relative to the inventory) and turns it into evidence documents, so the snapshot carries what the
file says with its origin.
"""

from __future__ import annotations

from pathlib import Path

from gpufence.attest.broker.config import key_release_evidence, load_broker_config
from gpufence.errors import InputError, SourceLocation
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.snapshot import Snapshot

__all__ = ["referenced_evidence"]


def _existing(snapshot: Snapshot, relative: str, pointer: tuple[str | int, ...]) -> Path:
    path = snapshot.inventory_dir / relative
    if not path.is_file():
        loc = snapshot.location(pointer)
        raise InputError(
            f"{'.'.join(map(str, pointer))}: no such file {str(path)!r}",
            location=SourceLocation(loc.file, loc.line, loc.column),
            hint="paths in the inventory are relative to the inventory file",
        )
    return path


def referenced_evidence(snapshot: Snapshot) -> list[tuple[EvidenceDocument, str]]:
    """Evidence from every file the inventory references; InputError when one is unreadable."""
    documents: list[tuple[EvidenceDocument, str]] = []
    release = snapshot.inventory.secrets.key_release
    if release is not None and release.broker_config is not None:
        path = _existing(
            snapshot, release.broker_config, ("secrets", "key_release", "broker_config")
        )
        documents.append((key_release_evidence(load_broker_config(path)), str(path)))
    return documents
