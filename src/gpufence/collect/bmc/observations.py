"""The ``bmc.*`` facts a BMC scan can report, and the builder that collects them (pure).

Every fact the controls read is listed in :data:`FACTS`, typed by
:class:`~gpufence.model.observed_bmc.ObservedBmc`: the scanner checks each value against the type
the controls read it as, so writer and reader share one definition. A fact is *observed* when some
source gave a value of its type, otherwise it is *not observed* with the most specific reason
available.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import JsonValue

from gpufence.collect.bmc.redfish import Json, Walk
from gpufence.model.observed_bmc import BMC_FACTS, ObservedBmc

__all__ = ["FACTS", "Observations", "dell_attributes", "enabled", "get", "hpe_params"]

FACTS: tuple[str, ...] = BMC_FACTS
"""The facts in the order documents list them (named and typed in ``model/observed_bmc.py``)."""


class Observations:
    """Facts with values, and reasons for the ones without (first reason wins)."""

    def __init__(self) -> None:
        self.observed: dict[str, JsonValue] = {}
        self.missing: dict[str, str] = {}

    def set(self, fact: str, value: object) -> None:
        """Record an observed fact; a value not of the fact's type is recorded as not observed.

        The BMC said something the controls could not read (a vendor that reports a count as a
        string): the evidence says so instead of carrying a value every reader would reject.
        """
        if value is None:
            return
        problem = ObservedBmc.read({fact: value}).unreadable.get(fact)
        if problem is not None:
            self.miss(fact, f"the BMC reported {fact} in an unexpected form ({problem})")
            return
        # JSON by construction (the walk's documents); EvidenceDocument.new validates it again.
        self.observed[fact] = cast(JsonValue, value)
        self.missing.pop(fact, None)

    def set_default(self, fact: str, value: object) -> None:
        """Set only when no other source gave a value (lower-precedence sources)."""
        if fact not in self.observed:
            self.set(fact, value)

    def miss(self, fact: str, reason: str) -> None:
        """Record that a fact could not be observed, and why."""
        if fact not in self.observed:
            self.missing.setdefault(fact, reason)

    def finish(self, reason: str) -> None:
        """Every fact of FACTS that nothing observed gets ``reason`` unless it has one."""
        for fact in FACTS:
            self.miss(fact, reason)


def get(doc: Json | None, dotted: str) -> Any:
    """The value at a dotted path in a Redfish document, None when absent."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def enabled(value: Any) -> bool | None:
    """Redfish/OEM spellings of on/off -> bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("enabled", "enable", "on", "true", "yes"):
            return True
        if text in ("disabled", "disable", "off", "false", "no"):
            return False
    return None


def hpe_params(walk: Walk) -> dict[str, Json]:
    """HPE iLO Security Dashboard parameters by name."""
    return {str(p.get("Name")): p for p in walk.all("hpe_security_param") if p.get("Name")}


class AttributeMap(dict[str, Any]):
    """Vendor attributes by name, looked up without regard to case.

    iDRAC spells its attribute keys as its registry does ("SysLog.1.SysLogEnable"), guides and
    firmware generations differ in case; a case-sensitive lookup missed remote syslog.
    """

    def __init__(self, items: dict[str, Any] | None = None) -> None:
        super().__init__()
        for key, value in (items or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key.casefold(), value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.casefold())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.casefold())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.casefold(), default)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        for key, value in dict(other, **kwargs).items():
            self[key] = value


def dell_attributes(walk: Walk) -> AttributeMap:
    """iDRAC attributes from every DellAttributes document, keys case-insensitive."""
    merged = AttributeMap()
    for doc in walk.all("dell_attributes"):
        attrs = doc.get("Attributes")
        if isinstance(attrs, dict):
            merged.update(attrs)
    return merged
