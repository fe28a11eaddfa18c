"""The user docs that are generated from code must be current."""

from __future__ import annotations

from gpufence.controls import ALL_CONTROLS
from gpufence.controls.reference import controls_markdown
from gpufence.model.inventory import Inventory
from tests.conftest import REPO


def test_controls_reference_is_current() -> None:
    current = (REPO / "docs" / "controls.md").read_text(encoding="utf-8")
    assert current == controls_markdown(ALL_CONTROLS), "run `make docs` and commit docs/controls.md"


def _fields(model: type, seen: set[type]) -> set[str]:
    from pydantic import BaseModel

    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        names.add(name)
        for candidate in _nested_models(field.annotation):
            if issubclass(candidate, BaseModel):
                names |= _fields(candidate, seen)
    return names


def _nested_models(annotation: object) -> list[type]:
    import typing

    out: list[type] = []
    if isinstance(annotation, type):
        out.append(annotation)
    for arg in typing.get_args(annotation):
        out.extend(_nested_models(arg))
    return out


def test_inventory_doc_mentions_every_field() -> None:
    doc = (REPO / "docs" / "inventory.md").read_text(encoding="utf-8")
    missing = sorted(f for f in _fields(Inventory, set()) if f"`{f}`" not in doc)
    assert not missing, f"docs/inventory.md does not document: {missing}"
