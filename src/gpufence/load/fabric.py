"""An InfiniBand subnet's partitions.conf, read by the loader into evidence (pure given the bytes).

The inventory names the file (``networks[].partitions_conf``); :mod:`gpufence.load.referenced` reads
it and calls :func:`partitions_document`, which parses it as OpenSM 3.3.23 does and records what
the linter and the membership replay found (subject ``network/<name>``).
"""

from __future__ import annotations

from pathlib import Path

from gpufence.fabric.partitions import parse_partitions
from gpufence.fabric.records import PARTITIONS_COLLECTOR, PartitionsRecord
from gpufence.model.evidence import EvidenceDocument

__all__ = ["partitions_document"]


def partitions_document(network: str, path: Path, data: bytes) -> EvidenceDocument:
    """Evidence for one partitions.conf of network ``network``."""
    config = parse_partitions(data, str(path))
    record = PartitionsRecord.of(config, data)
    counts = record.lint.counts()
    return EvidenceDocument.new(
        subject=f"network/{network}",
        collector=PARTITIONS_COLLECTOR,
        observed={
            "fabric.partitions_conf.fails_open": config.fails_open,
            "fabric.partitions_conf.errors": counts["error"],
            "fabric.partitions_conf.warnings": counts["warning"],
            "fabric.partitions_conf.partitions": len(record.lint.partitions),
        },
        raw={"partitions_conf": record.model_dump(mode="json")},
    )
