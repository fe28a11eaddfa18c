"""The rule set itself: valid, one copy, every rule judged by a real control, printable."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from gpufence.cli import main
from gpufence.controls import controls_by_id
from gpufence.policy import load_policy, parse_policy
from tests.conftest import REPO

SRC = REPO / "src" / "gpufence"


def test_every_rule_is_judged_by_existing_controls_and_cites_sources() -> None:
    policy = load_policy()
    known = controls_by_id()
    assert len(policy.rules) >= 15
    for rule in policy.rules:
        assert rule.controls and set(rule.controls) <= set(known), rule.id
        assert rule.sources and all(u.startswith("https://") for u in rule.sources)


def _rule_ids_used(path: Path) -> set[str]:
    """String literals passed to rule_evidence(...) / fired(...) / Refusal(rule=...)."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        args = list(node.args) + [k.value for k in node.keywords if k.arg == "rule"]
        if name in ("rule_evidence", "fired", "Refusal") and args:
            first = args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                used.add(first.value)
    return used


def test_code_names_only_rules_of_the_rule_set_and_judges_each_where_it_says() -> None:
    ids = {r.id for r in load_policy().rules}
    by_file: dict[Path, set[str]] = {p: _rule_ids_used(p) for p in SRC.rglob("*.py")}
    used = set().union(*by_file.values())
    assert used <= ids, used - ids
    # Every rule is judged somewhere in the controls (no planner-only rule) ...
    constants = {
        node.value
        for path in (SRC / "controls").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert ids <= constants, ids - constants
    # ... and the planner's tier decision fires only rules of the set (one copy: no inline text).
    tiers = (SRC / "policy" / "tiers.py").read_text(encoding="utf-8")
    for rule in load_policy().rules:
        assert rule.text not in tiers


def test_invalid_rule_sets_are_refused() -> None:
    good = (SRC / "policy" / "data" / "tiers.yaml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate rule ids"):
        parse_policy(good.replace("id: hard-sharing", "id: no-soft-sharing"))
    with pytest.raises(ValueError, match="https"):
        parse_policy(good.replace("https://docs.nvidia.com/deploy/mps/", "http://x"))
    with pytest.raises(ValueError, match="GPU-001"):
        parse_policy(good.replace("controls: [GPU-007]", "controls: [GPU7]"))


def test_policy_show_text_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["policy", "show"]) == 0
    text = capsys.readouterr().out
    for rule in load_policy().rules:
        assert rule.id in text and rule.sources[0] in text
    assert "[advisory: low-severity finding]" in text
    out = tmp_path / "policy.json"
    assert main(["policy", "show", "--format", "json", "--output", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["version"] == load_policy().version
    assert {r["id"] for r in doc["rules"]} == {r.id for r in load_policy().rules}
    assert main(["policy", "show", "--format", "yaml"]) == 2


def test_docs_describe_every_rule() -> None:
    doc = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    for rule in load_policy().rules:
        assert f"`{rule.id}`" in doc, rule.id
