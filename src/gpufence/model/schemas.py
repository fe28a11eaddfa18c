"""JSON Schemas of gpufence's file formats, generated from the models (so they cannot drift)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from gpufence.model.evidence import EvidenceDocument
from gpufence.model.findings import FindingsReport
from gpufence.model.inventory import Inventory

__all__ = ["SCHEMAS", "schema_for"]

SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "inventory": (Inventory, "gpufence inventory (version 1)"),
    "findings": (FindingsReport, "gpufence findings report (gpufence.findings/v1)"),
    "evidence": (EvidenceDocument, "gpufence evidence document (gpufence.evidence/v1)"),
}


def schema_for(name: str) -> dict[str, Any]:
    """The JSON Schema of ``name``: 'inventory', 'findings' or 'evidence'."""
    model, title = SCHEMAS[name]
    # Validation mode for inputs; serialization mode for what gpufence writes (computed fields).
    mode: Literal["validation", "serialization"] = (
        "serialization" if name == "findings" else "validation"
    )
    schema = model.model_json_schema(by_alias=True, mode=mode)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema
