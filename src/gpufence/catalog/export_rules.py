"""US export-control rules for advanced-computing GPUs, as dated data (``data/export_rules.yaml``).

An engineering aid, not legal advice: the rules say when a licence is needed for a part at a
destination (15 CFR 740 Supplement No. 1 country groups) or for an owner headquartered in D:5 or
Macau (15 CFR 744.23(a)(3)); :func:`licence_requirements` applies the version in force on a date.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import Field, ValidationError, model_validator

from gpufence._frozen import Frozen
from gpufence._yaml import Yaml12Loader
from gpufence.errors import InternalError

__all__ = [
    "CountryGroup",
    "ExportClass",
    "ExportRules",
    "LicenceRequirement",
    "MembershipChange",
    "Requirement",
    "RuleSource",
    "RuleVersion",
    "export_rules",
    "licence_requirements",
    "parse_export_rules",
]

_COUNTRY = r"^[A-Z]{2}$"


class RuleSource(Frozen):
    """A publication a rule restates."""

    date: dt.date
    url: str = Field(pattern=r"^https://")
    title: str


class MembershipChange(Frozen):
    """A country that joined or left a group on a date (it is a member from ``added`` on, and
    until the day before ``removed``)."""

    code: str = Field(pattern=_COUNTRY)
    added: dt.date | None = None
    removed: dt.date | None = None
    source: str

    @model_validator(mode="after")
    def _one(self) -> MembershipChange:
        if (self.added is None) == (self.removed is None):
            raise ValueError(f"{self.code}: give exactly one of added or removed")
        return self


class CountryGroup(Frozen):
    """An EAR country group: its members as of the review date, their history, and the source."""

    name: str
    members: tuple[str, ...] = Field(min_length=1)
    """Members as of the rule set's review date."""
    history: tuple[MembershipChange, ...] = ()
    source: str

    @model_validator(mode="after")
    def _codes(self) -> CountryGroup:
        bad = [m for m in self.members if not re.match(_COUNTRY, m)]
        if bad or len(set(self.members)) != len(self.members):
            raise ValueError(
                f"members must be unique ISO 3166-1 alpha-2 codes, got {bad or 'dupes'}"
            )
        for change in self.history:
            if (change.added is not None) != (change.code in self.members):
                raise ValueError(f"{change.code}: an added country is a member, a removed one not")
        return self

    def has(self, code: str, day: dt.date) -> bool:
        """Whether ``code`` was a member on ``day``."""
        for change in self.history:
            if change.code == code:
                if change.added is not None:
                    return day >= change.added
                assert change.removed is not None
                return day < change.removed
        return code in self.members


class ExportClass(Frozen):
    """A classification (an ECCN, or an 'is informed' requirement) and the parts it names."""

    id: str
    title: str
    parts: tuple[str, ...] = Field(min_length=1)
    """gpufence catalog keys."""
    h200_class: tuple[str, ...] = ()
    """Parts under the 2026 case-by-case thresholds (TPP < 21,000, DRAM bandwidth < 6,500 GB/s)."""
    since: dt.date
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _subset(self) -> ExportClass:
        extra = set(self.h200_class) - set(self.parts)
        if extra:
            raise ValueError(f"{self.id}: h200_class names parts not in parts: {sorted(extra)}")
        return self


class Requirement(Frozen):
    """One licence requirement: by destination, or by the owner's headquarters (worldwide)."""

    id: str
    classes: tuple[str, ...] = Field(min_length=1)
    destinations: tuple[str, ...] = ()
    except_: tuple[str, ...] = Field(default=(), alias="except")
    headquarters_in: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    """Headquarters requirements: destinations (countries) where it does not apply (the US)."""
    rule: str
    review_policy: str
    h200_class_policy: str | None = None
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Requirement:
        if bool(self.destinations) == bool(self.headquarters_in):
            raise ValueError(f"{self.id}: give exactly one of destinations or headquarters_in")
        return self


class RuleVersion(Frozen):
    """One version of the export rules: when it took effect and what it requires."""

    id: str
    effective: dt.date
    title: str
    notes: str | None = None
    requirements: tuple[Requirement, ...] = Field(min_length=1)


class ExportRules(Frozen):
    """The whole rule set: sources, groups, classes and dated versions (oldest first)."""

    reviewed: dt.date
    sources: Mapping[str, RuleSource]
    country_groups: Mapping[str, CountryGroup]
    treat_as: Mapping[str, str] = {}
    classes: tuple[ExportClass, ...]
    versions: tuple[RuleVersion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> ExportRules:
        dates = [v.effective for v in self.versions]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("versions must be in strictly increasing effective-date order")
        class_ids = {c.id for c in self.classes}
        for name, group in self.country_groups.items():
            for change in group.history:
                self._known_sources(f"{name}/{change.code}", (change.source,))
        for cls in self.classes:
            self._known_sources(cls.id, cls.sources)
        for version in self.versions:
            for req in version.requirements:
                where = f"{version.id}/{req.id}"
                self._known_sources(where, req.sources)
                if unknown := set(req.classes) - class_ids:
                    raise ValueError(f"{where}: unknown classes {sorted(unknown)}")
                groups = {*req.destinations, *req.except_, *req.headquarters_in}
                if unknown := groups - set(self.country_groups):
                    raise ValueError(f"{where}: unknown country groups {sorted(unknown)}")
        return self

    def _known_sources(self, where: str, names: tuple[str, ...]) -> None:
        if unknown := set(names) - set(self.sources):
            raise ValueError(f"{where}: unknown sources {sorted(unknown)}")

    def version_on(self, day: dt.date) -> RuleVersion | None:
        """The version in force on ``day`` (None before the first one)."""
        found = None
        for version in self.versions:
            if version.effective <= day:
                found = version
        return found

    def classes_of(self, part: str, day: dt.date) -> tuple[ExportClass, ...]:
        """Classes naming catalog key ``part`` that exist on ``day``."""
        return tuple(c for c in self.classes if part in c.parts and c.since <= day)

    def groups_of(self, country: str, day: dt.date) -> tuple[str, ...]:
        """Names of the country groups ``country`` belonged to on ``day`` (after ``treat_as``)."""
        code = self.treat_as.get(country, country)
        return tuple(name for name, g in self.country_groups.items() if g.has(code, day))

    def cite(self, names: tuple[str, ...]) -> list[str]:
        """URLs of the named sources, for finding evidence."""
        return [self.sources[n].url for n in names]


@dataclass(frozen=True)
class LicenceRequirement:
    """Why a licence is needed for one part: the requirement, the class and the matched group."""

    requirement: Requirement
    export_class: ExportClass
    reason: str
    review_policy: str


def licence_requirements(
    rules: ExportRules,
    version: RuleVersion,
    part: str,
    day: dt.date,
    *,
    destination: str,
    headquarters: tuple[str, ...],
) -> list[LicenceRequirement]:
    """Every requirement of ``version`` that makes a licence necessary for ``part``.

    ``destination`` is the site country; ``headquarters`` the countries of the owner's
    headquarters and ultimate parent. An empty list means no licence under these rules.
    """
    found: list[LicenceRequirement] = []
    dest_groups = set(rules.groups_of(destination, day))
    for cls in rules.classes_of(part, day):
        for req in version.requirements:
            if cls.id not in req.classes:
                continue
            policy = req.review_policy
            if req.h200_class_policy and part in cls.h200_class:
                policy = req.h200_class_policy
            if req.destinations:
                hit = sorted(dest_groups & set(req.destinations))
                if hit and not dest_groups & set(req.except_):
                    found.append(
                        LicenceRequirement(
                            req, cls, f"destination {destination} is in {', '.join(hit)}", policy
                        )
                    )
            elif rules.treat_as.get(destination, destination) not in req.outside:
                for country in headquarters:
                    hq_hit = sorted(set(rules.groups_of(country, day)) & set(req.headquarters_in))
                    if hq_hit:
                        found.append(
                            LicenceRequirement(
                                req,
                                cls,
                                f"owner headquartered (or ultimate parent) in {country} "
                                f"({', '.join(hq_hit)}), wherever the parts are outside "
                                f"{'/'.join(req.outside) or 'nowhere'}",
                                policy,
                            )
                        )
                        break
    return found


def parse_export_rules(text: str, *, origin: str = "gpufence.catalog") -> ExportRules:
    """Parse and validate the rule set; a defect is an InternalError (the data ships with us)."""
    try:
        doc = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - safe loader subclass
        return ExportRules.model_validate(doc)
    except (yaml.YAMLError, ValidationError) as exc:
        raise InternalError(f"{origin}: export_rules.yaml is invalid: {exc}") from exc


@functools.cache
def export_rules() -> ExportRules:
    """The bundled rule set (read once)."""
    text = resources.files("gpufence.catalog").joinpath("data/export_rules.yaml").read_text()
    return parse_export_rules(text, origin="gpufence.catalog/data/export_rules.yaml")
