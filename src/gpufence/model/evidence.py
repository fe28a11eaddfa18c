"""Evidence: facts a collector observed about one resource, and what it could not observe.

An evidence file is JSON (one document, or ``{"evidence": [...]}`` for several) written by a
collector (`gpufence collect gpu`, `gpufence scan bmc`, ...). Its ``subject`` is a resource path
of the inventory (``node/gpu-a01``, ``bmc/gpu-a01-bmc``). Observed facts override what the
inventory declares; a fact listed in ``not_observed`` stays as declared (or unknown) and the reason
is carried into findings so a NOT_EVALUATED names why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import Field, JsonValue

from gpufence import __version__
from gpufence._frozen import Frozen

__all__ = [
    "EVIDENCE_SCHEMA",
    "FACT_PREFIXES",
    "MUST_OBSERVE",
    "CollectorName",
    "EvidenceDocument",
    "EvidenceFile",
    "StaleEvidence",
    "Unobserved",
]

EVIDENCE_SCHEMA = "gpufence.evidence/v1"

FACT_PREFIXES: dict[str, tuple[str, ...] | None] = {
    "node": ("gpu_state.", "host.", "software."),
    "bmc": ("bmc.",),
    "network": ("fabric.",),
    "fabric": ("fabric.",),
    "cluster": ("k8s.",),
    "secrets": ("key_release.",),
    "pool": None,
    "site": None,
    "storage": None,
    "tenant": None,
}
"""Subject kind -> the fact names its evidence may carry (None: not checked)."""

MUST_OBSERVE: frozenset[str] = frozenset(
    {
        "gpu_state.cc_mode",
        "gpu_state.cc_multi_gpu",
        "gpu_state.ecc",
        "gpu_state.mig",
        "gpu_state.mig_geometry",
        "host.secure_boot",
        "bmc.ipmi_over_lan",
    }
)
"""Facts the hardware can change behind the inventory's back (a GPU reset turns CC off, a BIOS
update turns Secure Boot off). When a collector looked and could not observe one, the declared
value is only a plan: the fact is unknown (NOT_EVALUATED), not declared (see docs/evidence.md)."""


class CollectorName(StrEnum):
    """Who wrote an evidence document (its ``collector`` field). Readers match on these names;
    a new collector adds its name here (its one registration; its module under
    ``gpufence.collect`` declares ``COLLECTOR``, and nothing else names it by string)."""

    NVML = "nvml"
    NVIDIA_SMI = "nvidia-smi"
    BMC_SCAN = "gpufence-bmc-scan"
    KUBERNETES = "kubernetes"
    PARTITIONS_CONF = "gpufence-partitions-conf"
    INFINIBAND_DIAGS = "infiniband-diags"
    BROKER_CONFIG = "gpufence-broker-config"

    @classmethod
    def gpu(cls) -> frozenset[str]:
        """The collectors that observe GPU state on a node (one report shape)."""
        return frozenset({cls.NVML, cls.NVIDIA_SMI})


class Unobserved(Frozen):
    """A fact a collector tried to read and could not, with the reason (never a silent gap)."""

    fact: str = Field(description="Dotted fact name, e.g. 'gpu_state.cc_mode'.")
    reason: str = Field(description="Why it could not be observed (403, timeout, unsupported).")


class EvidenceDocument(Frozen):
    """Observations about one resource by one collector at one time."""

    schema_id: Literal["gpufence.evidence/v1"] = Field(alias="schema")
    subject: str = Field(
        pattern=r"^(node|bmc|network|pool|site|storage|tenant|secrets|fabric|cluster)"
        r"/[A-Za-z0-9._:-]+$",
        description="Resource path of the inventory this evidence is about.",
    )
    collector: str = Field(description="What observed it: nvml, nvidia-smi, redfish, ipmi, ...")
    collector_version: str | None = None
    collected_at: datetime
    observed: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Dotted fact name -> observed value, e.g. {'gpu_state.ecc': true}.",
    )
    not_observed: tuple[Unobserved, ...] = ()
    raw: dict[str, JsonValue] = Field(
        default_factory=dict, description="Collector-specific detail, kept for reports."
    )

    model_config = Frozen.model_config | {"populate_by_name": True}

    @classmethod
    def new(
        cls,
        *,
        subject: str,
        collector: CollectorName | str,
        observed: Mapping[str, object] | None = None,
        not_observed: Iterable[Unobserved] = (),
        raw: Mapping[str, object] | None = None,
        collected_at: datetime | None = None,
    ) -> Self:
        """The one constructor collectors and loaders use: schema, tool version and time set here.

        Values are validated (``observed`` and ``raw`` must be JSON values), so a collector bug
        surfaces where the document is made, not when it is read back.
        """
        return cls.model_validate(
            {
                "schema": EVIDENCE_SCHEMA,
                "subject": subject,
                "collector": str(collector),
                "collector_version": f"gpufence {__version__}",
                "collected_at": collected_at or datetime.now(UTC),
                "observed": dict(observed or {}),
                "not_observed": tuple(not_observed),
                "raw": dict(raw or {}),
            }
        )


class EvidenceFile(Frozen):
    """Several evidence documents in one file."""

    evidence: tuple[EvidenceDocument, ...]


class StaleEvidence(Frozen):
    """A document older than its age limit: kept to say why its facts are unknown."""

    document: EvidenceDocument
    origin: str
    reason: str
