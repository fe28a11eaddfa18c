"""Parsing the ``--at TIME`` option shared by the attestation commands."""

from __future__ import annotations

from datetime import UTC, datetime

from gpufence.errors import InputError

__all__ = ["parse_at"]


def parse_at(value: str | None) -> datetime:
    """``--at`` as an aware datetime (UTC when no zone is given); now when not given."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"--at {value!r} is not an ISO 8601 time (e.g. 2026-11-25T00:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
