"""Read a mutelist YAML file (errors name file:line:column)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from gpufence._yaml import load_yaml, pointer_to_text
from gpufence.errors import InputError
from gpufence.model.mutelist import Mutelist

__all__ = ["load_mutelist"]


def load_mutelist(path: Path) -> Mutelist:
    """Read and validate a mutelist YAML file; InputError with file:line:column on bad input."""
    doc = load_yaml(path)
    try:
        return Mutelist.model_validate(doc.data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        raise InputError(
            f"{pointer_to_text(loc)}: {first['msg']}",
            location=doc.locate(loc),
            hint="a mute needs control, reason (10+ characters) and expires (YYYY-MM-DD)",
        ) from exc
