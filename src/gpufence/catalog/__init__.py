"""The silicon catalog: what each GPU model offers for tenant isolation (MIG, vGPU, CC, ECC).

Facts live in ``data/gpus.yaml`` and ``data/mig_families.yaml``, each row citing its sources.
``lookup("h100")``, ``lookup("NVIDIA H100 80GB HBM3")`` and ``lookup("0x233010DE")`` all return the
same :class:`GpuModel`.
"""

from __future__ import annotations

from gpufence.catalog._lookup import (
    Catalog,
    load_catalog,
    lookup,
    normalize_name,
    parse_catalog,
    parse_pci_device_id,
)
from gpufence.catalog._models import (
    Architecture,
    CcLevel,
    Confidence,
    FormFactor,
    GpuModel,
    MigProfile,
    normalize_mig_profile_name,
)

__all__ = [
    "Architecture",
    "Catalog",
    "CcLevel",
    "Confidence",
    "FormFactor",
    "GpuModel",
    "MigProfile",
    "load_catalog",
    "lookup",
    "normalize_mig_profile_name",
    "normalize_name",
    "parse_catalog",
    "parse_pci_device_id",
]
