"""Small helpers shared by the plane modules (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Iterable

from gpufence.controls.engine import Outcome
from gpufence.model.findings import Status
from gpufence.model.snapshot import Fact, NodeView

__all__ = [
    "CLUSTER",
    "expect_flag",
    "fact_evidence",
    "joined",
    "not_applicable",
    "tenant_names",
    "unknown_fact",
]

CLUSTER = "cluster"


def not_applicable(reason: str) -> Outcome:
    """The inventory declares nothing this control applies to: a PASS that says why."""
    return Outcome(Status.PASS, CLUSTER, f"not applicable: {reason}")


def tenant_names(view: NodeView) -> list[str]:
    return [t.name for t in view.tenants]


def unknown_fact(resource: str, what: str, fact: Fact[object]) -> Outcome:
    """NOT_EVALUATED naming the missing fact and why it is missing."""
    return Outcome(
        Status.NOT_EVALUATED,
        resource,
        f"{what} is unknown: {fact.origin}; declare it in the inventory or collect evidence",
        evidence={"missing": what},
        pointer=fact.pointer,
    )


def fact_evidence(**facts: Fact[object]) -> dict[str, object]:
    """Evidence entries with provenance, e.g. {'ecc': {'value': False, 'source': ...}}."""
    return {
        name: {"value": _plain(f.value), "source": f.source, "origin": f.origin}
        for name, f in facts.items()
    }


def _plain(value: object) -> object:
    enum_value = getattr(value, "value", None)
    return enum_value if enum_value is not None and not isinstance(value, bool) else value


def joined(items: Iterable[str]) -> str:
    return ", ".join(items) or "none"


def expect_flag(
    resource: str, what: str, name: str, fact: Fact[object], *, want: bool, says: tuple[str, str]
) -> Outcome:
    """PASS when a boolean fact equals ``want``, FAIL when not, NOT_EVALUATED when unknown.

    ``says`` is the message for (fact true, fact false).
    """
    if not fact.known:
        return unknown_fact(resource, what, fact)
    value = fact.value is True
    return Outcome(
        Status.PASS if value is want else Status.FAIL,
        resource,
        says[0] if value else says[1],
        fact_evidence(**{name: fact}),
        fact.pointer,
    )
