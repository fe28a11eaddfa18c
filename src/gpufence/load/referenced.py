"""Files the inventory points at, read into evidence. Every kind is registered here, in one place.

Controls never read files. When the inventory names a file (an InfiniBand subnet's
``partitions_conf``, the key broker's ``broker_config``), the loader reads it (relative to the
inventory file) and turns it into an evidence document, so the snapshot carries what the file
says with its origin. Adding a kind of referenced file = one :class:`ReferencedFile` entry in
:data:`REFERENCED_FILES` (and the reader it names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gpufence._yaml import pointer_to_text
from gpufence.errors import InputError, SourceLocation
from gpufence.model.evidence import EvidenceDocument
from gpufence.model.inventory import Inventory
from gpufence.model.snapshot import Pointer, Snapshot

__all__ = ["REFERENCED_FILES", "ReferencedFile", "referenced_evidence", "with_referenced"]


@dataclass(frozen=True)
class ReferencedFile:
    """One kind of file an inventory may reference, and how it becomes evidence."""

    kind: str
    """What the file is, in messages (``partitions.conf``, ``broker configuration``)."""
    references: Callable[[Inventory], Iterator[tuple[Pointer, str, str]]]
    """Every reference in an inventory: (pointer of the field, relative path, owner name)."""
    read: Callable[[Path, bytes, str], EvidenceDocument]
    """(resolved path, file bytes, owner name) -> the evidence document (pure given the bytes)."""


def _partitions_conf(inventory: Inventory) -> Iterator[tuple[Pointer, str, str]]:
    for index, net in enumerate(inventory.networks):
        if net.partitions_conf is not None:
            yield ("networks", index, "partitions_conf"), net.partitions_conf, net.name


def _read_partitions(path: Path, data: bytes, network: str) -> EvidenceDocument:
    from gpufence.load.fabric import partitions_document

    return partitions_document(network, path, data)


def _broker_config(inventory: Inventory) -> Iterator[tuple[Pointer, str, str]]:
    release = inventory.secrets.key_release
    if release is not None and release.broker_config is not None:
        yield ("secrets", "key_release", "broker_config"), release.broker_config, "key-release"


def _read_broker_config(path: Path, data: bytes, owner: str) -> EvidenceDocument:
    # Imported here: the broker's config module pulls in the attestation verifier, which an
    # audit without a broker never needs.
    from gpufence.attest.broker.config import key_release_evidence, load_broker_config

    return key_release_evidence(load_broker_config(path))


REFERENCED_FILES: tuple[ReferencedFile, ...] = (
    ReferencedFile("partitions.conf", _partitions_conf, _read_partitions),
    ReferencedFile("broker configuration", _broker_config, _read_broker_config),
)
"""Every kind of file an inventory can reference, in the order their evidence is attached."""


def referenced_evidence(snapshot: Snapshot) -> list[tuple[EvidenceDocument, str]]:
    """Evidence from every file the inventory references; InputError when one is unreadable."""
    documents: list[tuple[EvidenceDocument, str]] = []
    for kind in REFERENCED_FILES:
        for pointer, relative, owner in kind.references(snapshot.inventory):
            path = snapshot.inventory_dir / relative
            try:
                data = path.read_bytes()
            except OSError as exc:
                loc = snapshot.location(pointer)
                reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
                raise InputError(
                    f"{pointer_to_text(pointer)}: {reason or exc} {str(path)!r} ({kind.kind})",
                    location=SourceLocation(loc.file, loc.line, loc.column),
                    hint="paths in the inventory are relative to the inventory file",
                ) from exc
            documents.append((kind.read(path, data, owner), str(path)))
    return documents


def with_referenced(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` plus the evidence of every file its inventory references (appended last)."""
    documents = referenced_evidence(snapshot)
    return snapshot.with_evidence(documents) if documents else snapshot
