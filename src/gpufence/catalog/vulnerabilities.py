"""Known vulnerabilities of BMC firmware, the NVIDIA driver and the Container Toolkit, as data.

``data/vulnerabilities.yaml`` holds each entry with its CVEs, the product's version scheme,
the fixed versions, the advisory and the catalog's CISA KEV flag. The judges return a
:class:`Judgement` per product version: vulnerable entries, or why the version cannot be judged
(unknown scheme, OEM numbering, a driver branch the bulletin does not list).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import yaml
from packaging.version import InvalidVersion, Version
from pydantic import Field, ValidationError, field_validator, model_validator

from gpufence._frozen import Frozen
from gpufence._yaml import Yaml12Loader
from gpufence.errors import InternalError

__all__ = [
    "BmcProduct",
    "BmcVulnerability",
    "DriverEntry",
    "Hit",
    "Judgement",
    "ToolkitEntry",
    "VulnerabilityCatalog",
    "judge_bmc",
    "judge_driver",
    "judge_toolkit",
    "parse_vulnerabilities",
    "vulnerability_catalog",
]

_CVE = r"^CVE-\d{4}-\d{4,}$"


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern, re.I) if pattern is not None else None


class BmcProduct(Frozen):
    """A BMC firmware product line, matched by vendor/model regexes, with its version scheme."""

    id: str
    title: str
    vendor: str
    """Regex matched against '<vendor> <model>'."""
    model: str | None = None
    """Regex matched against '<model> <version>' (narrows a vendor to a product line)."""
    scheme: str | None
    """Regex with a ``version`` group fullmatching the firmware version; None: not comparable."""
    scheme_name: str
    supersedes: tuple[str, ...] = ()
    """Generic products this OEM product replaces when both match (its numbering wins)."""

    @field_validator("vendor", "model", "scheme")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            compiled = re.compile(value)
            if "version" in value and "version" not in compiled.groupindex:
                raise ValueError(f"scheme {value!r} needs a (?P<version>...) group")
        return value


class OemRange(Frozen):
    """What is known of an OEM's builds: the last known vulnerable one and the first known fixed."""

    vulnerable_through: str
    fixed_in: str
    source: str = Field(pattern=r"^https://")


class BmcVulnerability(Frozen):
    """A BMC firmware vulnerability: affected version ranges per product (and OEM builds)."""

    cve: str = Field(pattern=_CVE)
    title: str
    products: tuple[str, ...] = Field(min_length=1)
    affected: tuple[tuple[str, str], ...] = Field(min_length=1)
    """Half-open version ranges [low, fixed) in the product's scheme."""
    oem: Mapping[str, OemRange] = {}
    """Product id -> its OEM builds' known state (instead of ``affected``)."""
    fixed: str
    kev: bool
    kev_added: dt.date | None = None
    advisory: str = Field(pattern=r"^https://")
    sources: tuple[str, ...] = Field(min_length=1)
    notes: str | None = None


class DriverEntry(Frozen):
    """An NVIDIA GPU driver security bulletin: CVEs and the first fixed version per branch."""

    id: str
    cves: tuple[str, ...] = Field(min_length=1)
    title: str
    fixed: Mapping[str, str] = Field(min_length=1)
    """Driver branch ('570') -> first fixed version on it."""
    later_branches_fixed: bool
    kev: bool
    advisory: str = Field(pattern=r"^https://")
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _branches(self) -> DriverEntry:
        for branch, version in self.fixed.items():
            if not version.startswith(f"{branch}."):
                raise ValueError(f"{self.id}: fixed version {version} is not on branch {branch}")
        return self


class ToolkitEntry(Frozen):
    """An NVIDIA Container Toolkit security bulletin: CVEs and the fixed version."""

    id: str
    cves: tuple[str, ...] = Field(min_length=1)
    title: str
    fixed_in: str
    kev: bool
    advisory: str = Field(pattern=r"^https://")
    sources: tuple[str, ...] = Field(min_length=1)


class _DriverTable(Frozen):
    scheme: str
    entries: tuple[DriverEntry, ...] = Field(min_length=1)


class _ToolkitTable(Frozen):
    scheme: str
    entries: tuple[ToolkitEntry, ...] = Field(min_length=1)


class VulnerabilityCatalog(Frozen):
    """The shipped vulnerability data: BMC firmware, GPU drivers and the container toolkit."""

    reviewed: dt.date
    bmc_products: tuple[BmcProduct, ...]
    bmc: tuple[BmcVulnerability, ...]
    nvidia_driver: _DriverTable
    nvidia_container_toolkit: _ToolkitTable

    @model_validator(mode="after")
    def _references(self) -> VulnerabilityCatalog:
        known = {p.id for p in self.bmc_products}
        for product in self.bmc_products:
            if unknown := set(product.supersedes) - known:
                raise ValueError(f"{product.id}: supersedes unknown products {sorted(unknown)}")
        for vuln in self.bmc:
            if unknown := (set(vuln.products) | set(vuln.oem)) - known:
                raise ValueError(f"{vuln.cve}: unknown products {sorted(unknown)}")
            for pid, rng in vuln.oem.items():
                bad, good = _version(rng.vulnerable_through), _version(rng.fixed_in)
                if bad is None or good is None or not bad < good:
                    raise ValueError(f"{vuln.cve}/{pid}: vulnerable_through must be < fixed_in")
            for lo, hi in vuln.affected:
                if _version(lo) is None or _version(hi) is None:
                    raise ValueError(f"{vuln.cve}: range {lo}..{hi} is not dotted numbers")
        return self


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Hit:
    """One vulnerability entry that applies, with the fixed version to name."""

    cves: tuple[str, ...]
    title: str
    fixed: str
    kev: bool
    kev_origin: str | None
    advisory: str


@dataclass(frozen=True)
class Judgement:
    """The outcome for one product version: hits, or why it cannot be judged."""

    status: Literal["vulnerable", "clean", "unknown"]
    hits: tuple[Hit, ...] = ()
    reason: str = ""
    checked: tuple[str, ...] = field(default=())
    """Ids/CVEs of the entries that were compared (for the PASS message and evidence)."""


def _kev(
    own: bool, cves: tuple[str, ...], kev: Mapping[str, str] | None
) -> tuple[bool, str | None]:
    """The KEV flag: the catalog's own, or added by a KEV file (``cve -> 'origin (dateAdded)'``)."""
    for cve in cves:
        if kev is not None and cve in kev:
            return True, kev[cve]
    return own, ("gpufence catalog" if own else None)


def judge_bmc(
    catalog: VulnerabilityCatalog,
    vendor: str,
    model: str,
    version: str,
    kev: Mapping[str, str] | None = None,
) -> Judgement:
    """Judge one BMC firmware version against the catalog's BMC entries."""
    products = [
        p
        for p in catalog.bmc_products
        if re.search(p.vendor, f"{vendor} {model}", re.I)
        and (p.model is None or re.search(p.model, f"{model} {version}", re.I))
    ]
    replaced = {sid for p in products for sid in p.supersedes}
    products = [p for p in products if p.id not in replaced]
    if not products:
        return Judgement("clean", checked=tuple(v.cve for v in catalog.bmc))
    hits: list[Hit] = []
    unknown: list[str] = []
    checked: list[str] = []
    for product in products:
        vulns = [v for v in catalog.bmc if product.id in v.products]
        if not vulns:
            continue
        cves = ", ".join(v.cve for v in vulns)
        if product.scheme is None:
            unknown.append(
                f"{product.title}: firmware {version} uses {product.scheme_name}; {cves} cannot "
                "be ruled out from the version (check the OEM's bulletin)"
            )
            continue
        match = re.fullmatch(product.scheme, version.strip(), re.I)
        parsed = _version(match["version"]) if match else None
        if parsed is None:
            unknown.append(
                f"{product.title}: firmware version {version!r} is not in the known scheme "
                f"({product.scheme_name}); cannot compare with {cves}"
            )
            continue
        for vuln in vulns:
            rng = vuln.oem.get(product.id)
            if rng is not None:
                if Version(rng.vulnerable_through) < parsed < Version(rng.fixed_in):
                    unknown.append(
                        f"{product.title}: firmware {version} lies between "
                        f"{rng.vulnerable_through} (known vulnerable to {vuln.cve}) and "
                        f"{rng.fixed_in} (known fixed); "
                        "check the OEM's release notes"
                    )
                    continue
                affected = parsed <= Version(rng.vulnerable_through)
                fixed = f"{product.title} {rng.fixed_in}"
            else:
                affected = any(Version(lo) <= parsed < Version(hi) for lo, hi in vuln.affected)
                fixed = vuln.fixed
            checked.append(vuln.cve)
            if affected:
                flag, origin = _kev(vuln.kev, (vuln.cve,), kev)
                hits.append(Hit((vuln.cve,), vuln.title, fixed, flag, origin, vuln.advisory))
    if hits:
        return Judgement("vulnerable", tuple(hits), "; ".join(unknown), tuple(checked))
    if unknown:
        return Judgement("unknown", reason="; ".join(unknown), checked=tuple(checked))
    return Judgement("clean", checked=tuple(checked))


def judge_driver(
    catalog: VulnerabilityCatalog, version: str, kev: Mapping[str, str] | None = None
) -> Judgement:
    """Judge an NVIDIA Linux driver version (``570.133.20``) against the bulletins."""
    table = catalog.nvidia_driver
    match = re.fullmatch(table.scheme, version.strip())
    if match is None:
        return Judgement(
            "unknown", reason=f"driver version {version!r} is not <branch>.<minor>[.<patch>]"
        )
    installed = Version(match["version"])
    branch = match["version"].split(".")[0]
    hits: list[Hit] = []
    unknown: list[str] = []
    checked: list[str] = []
    for entry in table.entries:
        fixed = entry.fixed.get(branch)
        if fixed is None:
            newest = max(int(b) for b in entry.fixed)
            if entry.later_branches_fixed and int(branch) > newest:
                checked.append(entry.id)
                continue
            listed = ", ".join(f"R{b}" for b in sorted(entry.fixed))
            unknown.append(
                f"{entry.id} ({', '.join(entry.cves)}) lists fixes for {listed} only; branch "
                f"R{branch} is not covered (end of life, or not transcribed here)"
            )
            continue
        checked.append(entry.id)
        if installed < Version(fixed):
            flag, origin = _kev(entry.kev, entry.cves, kev)
            hits.append(Hit(entry.cves, entry.title, fixed, flag, origin, entry.advisory))
    if hits:
        return Judgement("vulnerable", tuple(hits), "; ".join(unknown), tuple(checked))
    if unknown:
        return Judgement("unknown", reason="; ".join(unknown), checked=tuple(checked))
    return Judgement("clean", checked=tuple(checked))


def judge_toolkit(
    catalog: VulnerabilityCatalog, version: str, kev: Mapping[str, str] | None = None
) -> Judgement:
    """Judge an NVIDIA Container Toolkit version (``1.17.8``) against the bulletins."""
    table = catalog.nvidia_container_toolkit
    match = re.fullmatch(table.scheme, version.strip())
    if match is None:
        return Judgement("unknown", reason=f"Container Toolkit version {version!r} is not X.Y.Z")
    installed = Version(match["version"])
    hits = []
    for entry in table.entries:
        if installed < Version(entry.fixed_in):
            flag, origin = _kev(entry.kev, entry.cves, kev)
            hits.append(Hit(entry.cves, entry.title, entry.fixed_in, flag, origin, entry.advisory))
    checked = tuple(e.id for e in table.entries)
    return Judgement("vulnerable" if hits else "clean", tuple(hits), checked=checked)


def parse_vulnerabilities(text: str, *, origin: str = "gpufence.catalog") -> VulnerabilityCatalog:
    """Parse and validate the vulnerability data; a defect is an InternalError (shipped data)."""
    try:
        doc = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - safe loader subclass
        return VulnerabilityCatalog.model_validate(doc)
    except (yaml.YAMLError, ValidationError) as exc:
        raise InternalError(f"{origin}: vulnerabilities.yaml is invalid: {exc}") from exc


@functools.cache
def vulnerability_catalog() -> VulnerabilityCatalog:
    """The bundled vulnerability catalog (read once)."""
    text = resources.files("gpufence.catalog").joinpath("data/vulnerabilities.yaml").read_text()
    return parse_vulnerabilities(text, origin="gpufence.catalog/data/vulnerabilities.yaml")
