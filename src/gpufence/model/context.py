"""The circumstances of one audit run that controls may read: dates, limits, offline feeds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_EXPORT_RULES_MAX_AGE_DAYS", "AuditContext"]

DEFAULT_EXPORT_RULES_MAX_AGE_DAYS = 365


@dataclass(frozen=True)
class AuditContext:
    """What an audit is judged under, besides the inventory and the evidence.

    ``today`` is read once when the context is made (controls stay pure); ``as_of`` asks for the
    rules in force on an earlier (or later) date; ``known_exploited`` maps CVE ids from a CISA KEV
    file to where the flag came from (None when no file was given: the catalogs' own flags apply).
    """

    today: dt.date = field(default_factory=dt.date.today)
    as_of: dt.date | None = None
    export_rules_max_age_days: int = DEFAULT_EXPORT_RULES_MAX_AGE_DAYS
    known_exploited: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.export_rules_max_age_days < 0:
            raise ValueError("export_rules_max_age_days must be >= 0")
        if self.known_exploited is not None:
            object.__setattr__(
                self, "known_exploited", MappingProxyType(dict(self.known_exploited))
            )

    @property
    def judged_on(self) -> dt.date:
        """The date rules are evaluated at: ``as_of`` if given, else ``today``."""
        return self.as_of or self.today
