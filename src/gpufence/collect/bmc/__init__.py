"""Live BMC collection: Redfish walk, TLS and IPMI probes, evidence for `gpufence scan bmc`.

Modules: :mod:`targets` (what to scan), :mod:`credentials` (secrets from a file or the
environment), :mod:`redfish` (link walk), :mod:`tls`, :mod:`ipmi` (probes), :mod:`facts`
(documents -> ``bmc.*`` facts), :mod:`scanner` (one process, async), :mod:`parallel` (worker
processes), :mod:`evidence` (documents, file, minimal snapshot), :mod:`mockup_server` (the test
and benchmark stand-in BMC).
"""

from __future__ import annotations

from gpufence.collect import CollectorInfo
from gpufence.collect.bmc.parallel import default_workers, scan_to_evidence
from gpufence.collect.bmc.scanner import ScanOptions
from gpufence.collect.bmc.targets import BmcTarget, parse_targets, targets_from_inventory
from gpufence.model.evidence import CollectorName

__all__ = [
    "BmcTarget",
    "ScanOptions",
    "default_workers",
    "parse_targets",
    "scan_to_evidence",
    "targets_from_inventory",
]

COLLECTOR = CollectorInfo(
    name=CollectorName.BMC_SCAN, module=__name__, subjects="bmc/<name>", command="scan bmc"
)
"""This module's collector (found by :func:`gpufence.collect.collectors`)."""
