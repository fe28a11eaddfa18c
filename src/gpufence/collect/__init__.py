"""Live collectors: talk to systems (HTTP, UDP, NVML, the Kubernetes API, subnet-manager tools)
and write what they saw, and what they could not see, as evidence documents.

Every collector follows the small protocol below and builds its documents with the one
constructor :meth:`gpufence.model.evidence.EvidenceDocument.new`, under a name from
:class:`gpufence.model.evidence.CollectorName`. Adding a collector = its own package or module
here + its name in ``CollectorName`` + one entry in :data:`COLLECTORS` (and its CLI command).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from gpufence.model.evidence import CollectorName, EvidenceDocument

__all__ = ["COLLECTORS", "Collector", "CollectorInfo"]


class Collector(Protocol):
    """What a collector is: a name, and a run that yields evidence documents.

    A collector never raises for a fact it could not observe: it lists the fact in the document's
    ``not_observed`` with the most specific reason. It raises
    :class:`gpufence.errors.InputError` only when it cannot run at all (no NVML, bad target).
    """

    name: CollectorName

    def collect(self) -> Iterable[EvidenceDocument]:
        """Observe and yield one document per subject (node, BMC, network, cluster)."""
        ...


@dataclass(frozen=True)
class CollectorInfo:
    """One registered collector: its evidence name, the module that implements it, its subjects."""

    name: CollectorName
    module: str
    subjects: str
    command: str


COLLECTORS: tuple[CollectorInfo, ...] = (
    CollectorInfo(CollectorName.NVML, "gpufence.collect.gpu.nvml", "node/<name>", "collect gpu"),
    CollectorInfo(
        CollectorName.NVIDIA_SMI,
        "gpufence.collect.gpu.nvidia_smi",
        "node/<name>",
        "collect gpu --from FILE",
    ),
    CollectorInfo(CollectorName.BMC_SCAN, "gpufence.collect.bmc", "bmc/<name>", "scan bmc"),
    CollectorInfo(
        CollectorName.KUBERNETES, "gpufence.collect.kubernetes", "cluster/kubernetes", "k8s scan"
    ),
    CollectorInfo(
        CollectorName.INFINIBAND_DIAGS,
        "gpufence.collect.fabric",
        "fabric/<network>",
        "fabric observe",
    ),
)
"""Every live collector (the loader's readers of referenced files are in gpufence.load)."""
