"""Shared pydantic configuration for every snapshot type."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable, strict-about-keys base model: unknown keys are errors, instances are hashable."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def overlaid(self, override: Self | None) -> Self:
        """This model with every field that ``override`` explicitly sets taking precedence."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))
