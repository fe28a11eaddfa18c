"""Docstrings on the public API (issue 15 part 4): an ast-based check, run by `make test`.

Scope: every module of src/gpufence outside ``cli/`` (commands document themselves in --help,
which tests/cli/test_grammar.py checks) and outside underscored modules (``_yaml``, ``_app``,
...). In scope, the public API is what a module exports in ``__all__`` (every non-underscored
top-level name when it has none) and the public methods of exported classes; each needs a
docstring, and each module needs one. Functions registered with ``@control(...)`` (or a
plane's wrapper of it, such as ``@_k8s_control(...)``) are exempt:
their metadata (title, failure mode, remediation, references) is their documentation and is
rendered into docs/controls.md.

Threshold 100 %: the API was brought to full coverage with this check, and a ratchet at 100 %
is one rule anyone can follow ("a new public name gets a docstring"), where a percentage lets
gaps accumulate unnoticed. interrogate (last release 1.7.0, 2024-04, pulling the retired ``py``
package) counts by naming convention only: it cannot read ``__all__`` or exempt ``@control``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "gpufence"


def _in_scope(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[0] == "cli":
        return False
    return not any(p.startswith("_") and p != "__init__" for p in parts)


def _exported(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            assert isinstance(node.value, (ast.List, ast.Tuple))
            return {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
    return None


def _is_control(node: ast.AST) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id.endswith("control")
        for d in getattr(node, "decorator_list", [])
    )


def missing_docstrings(root: Path = SRC) -> tuple[int, list[str]]:
    """(public items checked, those without a docstring as 'path:line name')."""
    checked = 0
    missing: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if not _in_scope(path, root):
            continue
        rel = path.relative_to(root.parent)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        checked += 1
        if not ast.get_docstring(tree):
            missing.append(f"{rel}:1 (module)")
        exported = _exported(tree)
        defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        for node in tree.body:
            if not isinstance(node, defs) or node.name.startswith("_"):
                continue
            if exported is not None and node.name not in exported:
                continue
            if _is_control(node):
                continue
            checked += 1
            if not ast.get_docstring(node):
                missing.append(f"{rel}:{node.lineno} {node.name}")
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, defs) and not sub.name.startswith("_"):
                        checked += 1
                        if not ast.get_docstring(sub):
                            missing.append(f"{rel}:{sub.lineno} {node.name}.{sub.name}")
    return checked, missing


def test_public_api_has_docstrings() -> None:
    checked, missing = missing_docstrings()
    assert checked > 500  # the scan really walked the package
    assert not missing, f"{len(missing)} of {checked} public items lack a docstring:\n" + "\n".join(
        missing
    )


def test_the_check_catches_a_missing_docstring(tmp_path: Path) -> None:
    package = tmp_path / "gpufence"
    (package / "model").mkdir(parents=True)
    (package / "model" / "thing.py").write_text(
        '"""A module."""\n__all__ = ["Thing", "make"]\n\n'
        'class Thing:\n    """Documented."""\n\n    def size(self) -> int:\n        return 1\n\n'
        "def make() -> Thing:\n    return Thing()\n\n"
        "def helper() -> None:\n    pass\n"
    )
    (package / "_private.py").write_text("def anything() -> None:\n    pass\n")
    (package / "cli").mkdir()
    (package / "cli" / "audit.py").write_text("def audit_command() -> None:\n    pass\n")
    checked, missing = missing_docstrings(package)
    assert [m.split(" ", 1)[1] for m in missing] == ["Thing.size", "make"]
    assert checked == 4  # module, Thing, Thing.size, make: not helper (not exported), not _private
