"""Shared pydantic configuration for every snapshot type."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import core_schema


class Frozen(BaseModel):
    """Immutable, strict-about-keys base model: unknown keys are errors, instances are hashable."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def overlaid(self, override: Self | None) -> Self:
        """This model with every field that ``override`` explicitly sets taking precedence."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


def kept_or_tuple_schema(
    kind: type, item: type, handler: GetCoreSchemaHandler
) -> core_schema.CoreSchema:
    """A field schema for a lazy sequence type ``kind`` of ``item``: an instance of ``kind`` is
    kept as it is; anything else is validated as ``tuple[item, ...]``; both serialise as that
    tuple."""
    as_tuple = handler.generate_schema(tuple[item, ...])  # type: ignore[valid-type]

    def keep(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
        return value if isinstance(value, kind) else validate(value)

    return core_schema.no_info_wrap_validator_function(
        keep,
        as_tuple,
        serialization=core_schema.plain_serializer_function_ser_schema(
            tuple, return_schema=as_tuple
        ),
    )
