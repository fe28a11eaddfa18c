"""Live collectors: talk to systems (HTTP, UDP, NVML, the Kubernetes API, subnet-manager tools)
and write what they saw, and what they could not see, as evidence documents.

Every collector follows the small protocol below and builds its documents with the one
constructor :meth:`gpufence.model.evidence.EvidenceDocument.new`, under a name from
:class:`gpufence.model.evidence.CollectorName`. Adding a collector = its own package or module
here, which declares ``COLLECTOR = CollectorInfo(...)`` (found by :func:`collectors`), + its name
in ``CollectorName`` (the one registration: readers match on it).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from gpufence.model.evidence import CollectorName, EvidenceDocument

__all__ = ["Collector", "CollectorInfo", "collectors"]


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
    """One collector, declared as ``COLLECTOR`` by the module that implements it."""

    name: CollectorName
    module: str
    """The declaring module (``__name__``)."""
    subjects: str
    """The subjects its documents are about, e.g. ``node/<name>``."""
    command: str
    """The CLI command that runs it."""


def collectors() -> tuple[CollectorInfo, ...]:
    """Every live collector, in :class:`CollectorName` order: the ``COLLECTOR`` that each module
    of this package declares, found by walking the package (as the controls are found).

    Imported on first call, so a command that runs one collector does not load the others.
    """
    return _discovered()


@cache
def _discovered() -> tuple[CollectorInfo, ...]:
    found: dict[CollectorName, CollectorInfo] = {}
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        declared = vars(importlib.import_module(info.name)).get("COLLECTOR")
        if not isinstance(declared, CollectorInfo) or declared.module != info.name:
            continue  # no collector here, or one imported from the module that declares it
        if declared.name in found:
            raise RuntimeError(
                f"collector {declared.name} declared twice: "
                f"{found[declared.name].module} and {declared.module}"
            )
        found[declared.name] = declared
    order = list(CollectorName)
    return tuple(sorted(found.values(), key=lambda c: order.index(c.name)))
