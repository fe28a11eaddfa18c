"""The versioned tier rule set as typed data: ``data/tiers.yaml`` validated into frozen models."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from importlib import resources

import yaml
from pydantic import Field, ValidationError, field_validator

from gpufence._frozen import Frozen

__all__ = ["Policy", "PolicyRule", "load_policy", "rule"]

_CONTROL = re.compile(r"^(GPU|CC|OOB|FW|FAB|K8S|DAT|CMP)-\d{3}$")


class PolicyRule(Frozen):
    """One tier rule: what it says, why, where the facts come from, which controls judge it."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    text: str = Field(min_length=10)
    rationale: str = Field(min_length=20)
    sources: tuple[str, ...] = Field(min_length=1)
    controls: tuple[str, ...] = Field(min_length=1)
    advisory: bool = False
    """A recommendation: reported at low severity; the default plan may stay below it."""

    @field_validator("sources")
    @classmethod
    def _https(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith("https://"):
                raise ValueError(f"source {url!r} must be an https URL")
        return value

    @field_validator("controls")
    @classmethod
    def _control_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for control in value:
            if not _CONTROL.match(control):
                raise ValueError(f"control id {control!r} must look like GPU-001")
        return value


class Policy(Frozen):
    """The whole rule set with its version and the date it took effect."""

    version: str
    effective: date
    rules: tuple[PolicyRule, ...] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: tuple[PolicyRule, ...]) -> tuple[PolicyRule, ...]:
        ids = [r.id for r in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids: {duplicates}")
        return value

    def get(self, rule_id: str) -> PolicyRule:
        """The rule called ``rule_id`` (KeyError for an unknown id: a programming error)."""
        for item in self.rules:
            if item.id == rule_id:
                return item
        raise KeyError(rule_id)


def parse_policy(text: str) -> Policy:
    """Validate a rule-set document (YAML)."""
    try:
        return Policy.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"invalid policy rule set: {exc}") from exc


@cache
def load_policy() -> Policy:
    """The rule set shipped in ``gpufence/policy/data/tiers.yaml`` (parsed once per process)."""
    text = resources.files("gpufence.policy").joinpath("data", "tiers.yaml").read_text("utf-8")
    return parse_policy(text)


def rule(rule_id: str) -> PolicyRule:
    """Shortcut: the shipped rule called ``rule_id``."""
    return load_policy().get(rule_id)
