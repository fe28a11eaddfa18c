"""Rich rendering of the catalog for ``gpufence catalog`` (renders only; decides nothing)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from gpufence.catalog._lookup import Catalog
from gpufence.catalog._models import GpuModel

__all__ = ["catalog_table"]

_DASH = "—"


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _ecc(model: GpuModel) -> str:
    if not model.ecc:
        return "no"
    # Off-by-default ECC is an audit finding waiting to happen; show it in the table.
    return "yes (default off)" if model.ecc_default_on is False else "yes"


def catalog_table(catalog: Catalog, models: Iterable[GpuModel] | None = None) -> Table:
    """The capability table: one line per model of ``catalog`` (or only ``models``, e.g. a lookup).

    Columns: key, architecture, MIG max, vGPU, CC class, ECC, consumer, export-controlled, PCI IDs.
    """
    table = Table(title="gpufence silicon catalog", header_style="bold")
    table.add_column("model", no_wrap=True)
    table.add_column("arch")
    table.add_column("MIG", justify="right")
    table.add_column("vGPU")
    table.add_column("CC")
    table.add_column("ECC")
    table.add_column("consumer")
    table.add_column("export-controlled")
    table.add_column("PCI IDs")
    for model in catalog.models if models is None else models:
        table.add_row(
            model.key,
            model.architecture.value,
            str(model.mig_max_instances) if model.mig_capable else _DASH,
            _yes_no(model.vgpu),
            model.cc.value if model.cc.supports_cc else _DASH,
            _ecc(model),
            _yes_no(model.consumer),
            _yes_no(model.export_controlled),
            ", ".join(model.pci_device_ids),
        )
    return table
