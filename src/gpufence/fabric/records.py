"""What the fabric collector puts in evidence ``raw`` and how controls read it back (pure).

A partitions.conf travels as a :class:`PartitionsRecord`: its lint report and the compact ordered
membership operations, enough to replay OpenSM's partition manager on any set of ports without
the file. An observed subnet travels as :class:`~gpufence.fabric.observed.ObservedFabric`.
"""

from __future__ import annotations

import hashlib

from pydantic import Field, ValidationError

from gpufence._frozen import Frozen
from gpufence.fabric.lint import LintReport, lint
from gpufence.fabric.observed import ObservedFabric
from gpufence.fabric.partitions import (
    MemberKind,
    MemberOp,
    Membership,
    ParseError,
    PartitionsConfig,
)
from gpufence.model.evidence import CollectorName, EvidenceDocument

__all__ = [
    "OBSERVED_COLLECTOR",
    "PARTITIONS_COLLECTOR",
    "PartitionsRecord",
    "observed_of",
    "partitions_of",
]

PARTITIONS_COLLECTOR = CollectorName.PARTITIONS_CONF
OBSERVED_COLLECTOR = CollectorName.INFINIBAND_DIAGS

Op = tuple[int, str, str | None, str, int]


class PartitionsRecord(Frozen):
    """A partitions.conf as evidence: path, digest, PKey names, membership operations and lint."""

    path: str
    sha256: str
    fails_open: bool
    names: dict[str, str] = Field(description="PKey (0x....) -> partition name.")
    ops: tuple[Op, ...] = Field(
        description="Membership operations in file order: (pkey, kind, guid, membership, line)."
    )
    lint: LintReport

    @classmethod
    def of(
        cls, config: PartitionsConfig, data: bytes, *, allow_both_pkeys: bool = False
    ) -> PartitionsRecord:
        """The record of a parsed partitions.conf and its bytes."""
        return cls(
            path=config.source,
            sha256=hashlib.sha256(data).hexdigest(),
            fails_open=config.fails_open,
            names={f"0x{k:04x}": v for k, v in config.names.items()},
            ops=tuple(
                (
                    op.pkey,
                    op.kind.value,
                    None if op.guid is None else f"0x{op.guid:016x}",
                    op.membership.value,
                    op.line,
                )
                for op in config.ops
            ),
            lint=lint(config, data, allow_both_pkeys=allow_both_pkeys),
        )

    def config(self, *, as_written: bool = False) -> PartitionsConfig:
        """A :class:`PartitionsConfig` carrying what :func:`membership.program` needs.

        ``as_written``: the file's own statements even when OpenSM would fail open on it.
        """
        ops = tuple(
            MemberOp(
                pkey,
                MemberKind(kind),
                None if guid is None else int(guid, 16),
                Membership(how),
                line,
                0,
                guid or kind,
                None,
            )
            for pkey, kind, guid, how, line in self.ops
        )
        return PartitionsConfig(
            source=self.path,
            statements=(),
            ops=ops,
            # The record keeps the verdict, not the error: one stand-in error means "fails open".
            errors=(ParseError("recorded", "PARSE ERROR", 0, 0, 0, ""),)
            if self.fails_open and not as_written
            else (),
            events=(),
            names={int(k, 16): v for k, v in self.names.items()},
            physical_lines=(),
            crlf_lines=(),
            has_default_rule=False,
        )


def partitions_of(doc: EvidenceDocument) -> PartitionsRecord | None:
    """The partitions.conf record in an evidence document, None if it holds none."""
    if doc.collector != PARTITIONS_COLLECTOR or "partitions_conf" not in doc.raw:
        return None
    try:
        return PartitionsRecord.model_validate(doc.raw["partitions_conf"])
    except ValidationError:
        return None


def observed_of(doc: EvidenceDocument) -> ObservedFabric | None:
    """The observed PKey tables in an evidence document, None if it holds none."""
    if doc.collector != OBSERVED_COLLECTOR or "subnet" not in doc.raw:
        return None
    try:
        return ObservedFabric.model_validate(doc.raw["subnet"])
    except ValidationError:
        return None
