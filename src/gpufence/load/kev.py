"""Read a CISA Known Exploited Vulnerabilities (KEV) catalog JSON file, offline.

The file is the one CISA publishes (``known_exploited_vulnerabilities.json``: ``catalogVersion``,
``dateReleased``, ``vulnerabilities[].cveID`` / ``dateAdded`` ...). Only the CVE ids and dates
are used: they add known-exploited flags to the vulnerability catalog's entries.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gpufence.errors import InputError, SourceLocation

__all__ = ["MAX_KEV_BYTES", "load_kev"]

MAX_KEV_BYTES = 64 * 1024 * 1024
"""The real catalog is about 1.5 MB; anything this large is not one."""


class _KevEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    cveID: str = Field(pattern=r"^CVE-\d{4}-\d{4,}$")
    dateAdded: dt.date


class _KevFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    catalogVersion: str | None = None
    dateReleased: str | None = None
    vulnerabilities: tuple[_KevEntry, ...]


def load_kev(path: Path) -> dict[str, str]:
    """CVE id -> 'CISA KEV <file> (catalog <version>, added <date>)' for every entry of ``path``."""
    hint = "give the CISA KEV catalog JSON (known_exploited_vulnerabilities.json)"
    try:
        size = path.stat().st_size
        if size > MAX_KEV_BYTES:
            raise InputError(
                f"KEV file is {size} bytes, more than {MAX_KEV_BYTES}",
                location=SourceLocation(path),
                hint=hint,
            )
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(
            f"cannot read KEV file: {exc.strerror}", location=SourceLocation(path)
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError("KEV file is not UTF-8 text", location=SourceLocation(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"KEV file is not valid JSON: {exc.msg}",
            location=SourceLocation(path, exc.lineno, exc.colno),
            hint=hint,
        ) from exc
    try:
        parsed = _KevFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise InputError(
            f"KEV file: {where}: {first['msg']}", location=SourceLocation(path), hint=hint
        ) from exc
    version = f"catalog {parsed.catalogVersion}, " if parsed.catalogVersion else ""
    return {
        e.cveID: f"CISA KEV {path.name} ({version}added {e.dateAdded})"
        for e in parsed.vulnerabilities
    }
