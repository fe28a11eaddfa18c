"""Every command follows the CLI grammar of docs/cli.md; walks the real command tree.

The tree comes from the root click group (every command module loaded through the lazy group),
not from a hand-written list, so a new command is checked the day it is added.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from gpufence.cli import app, main
from gpufence.cli._app import COMMANDS

_PY_TYPES = re.compile(
    r"<(str|int|float|bool|Path|file|dir|path|list\[[^\]]*\]|[a-z]+ range)>|\b(TEXT|INTEGER|FLOAT|"
    r"BOOLEAN)\b"
)
_PATH_METAVARS = {"FILE", "DIR", "PATH", "INVENTORY"}


def _walk(command: Any, ctx: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{' '.join(path)} lists {name!r} but cannot load it"
            sub_ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
            yield from _walk(sub, sub_ctx, (*path, name))


def _tree() -> list[tuple[tuple[str, ...], Any, Any]]:
    root = typer.main.get_command(app)
    ctx = root.make_context("gpufence", [], resilient_parsing=True)
    out = []
    for path, command in _walk(root, ctx, ()):
        sub_ctx = command.make_context(" ".join(("gpufence", *path)), [], resilient_parsing=True)
        out.append((path, command, sub_ctx))
    return out


TREE = _tree()
LEAVES = [(p, c, x) for p, c, x in TREE if not hasattr(c, "list_commands")]
IDS = [" ".join(p) or "gpufence" for p, _, _ in TREE]


def test_tree_has_every_command() -> None:
    names = {p[0] for p, _, _ in TREE if p}
    assert names == set(COMMANDS)
    assert len(LEAVES) >= 16  # audit, plan, scan bmc, fabric lint/check/observe/emit, ...


@pytest.mark.parametrize(("path", "command", "ctx"), TREE, ids=IDS)
def test_help_follows_grammar(path: tuple[str, ...], command: Any, ctx: Any) -> None:
    where = " ".join(("gpufence", *path))
    assert (command.help or "").strip(), f"{where}: no description"
    names = set()
    for param in command.params:
        opts = [*param.opts, *param.secondary_opts]
        names.update(opts)
        if param.hidden:
            assert "Deprecated" in (param.help or ""), f"{where} {opts}: hidden but not deprecated"
            continue
        if param.param_type_name == "option":
            assert (param.help or "").strip(), f"{where} {opts}: option without help"
        else:
            assert (param.help or "").strip(), f"{where} {param.name}: argument without help"
        record = param.get_help_record(ctx)
        if record is None:
            continue
        assert not _PY_TYPES.search(record[0]), f"{where}: {record[0]!r} shows a Python type"
        if param.param_type_name == "option" and not param.is_flag:
            if "--output" in opts:
                assert opts[:2] == ["--output", "-o"] or set(opts) == {"--output", "-o"}
            if "-o" in opts:
                assert "--output" in opts, f"{where}: -o must mean --output (the report)"
            if "--format" in opts:
                assert "-f" in opts, f"{where}: --format without -f"
            if "Path" in str(param.type_descriptor.annotation):
                assert param.metavar in _PATH_METAVARS, f"{where} {opts}: metavar {param.metavar}"
    assert "--json" not in {o for p in command.params if not p.hidden for o in p.opts}
    # Finding-producing commands take --fail-on and --mutelist together.
    if "--fail-on" in names:
        assert "--mutelist" in names, f"{where}: --fail-on without --mutelist"
        assert "--format" in names and "--output" in names, f"{where}: a report needs both"


@pytest.mark.parametrize(
    ("path", "command", "ctx"), LEAVES, ids=[" ".join(p) for p, _, _ in LEAVES]
)
def test_inventory_is_positional_or_dash_i(path: tuple[str, ...], command: Any, ctx: Any) -> None:
    for param in command.params:
        if param.name != "inventory":
            continue
        if param.param_type_name == "argument":
            assert param.metavar == "INVENTORY"
        else:
            assert {"--inventory", "-i"} <= set(param.opts), f"{path}: {param.opts}"


def test_root_listing_matches_command_help(capsys: pytest.CaptureFixture[str]) -> None:
    """The one-line help in COMMANDS (shown without importing) is the command's own."""
    root = typer.main.get_command(app)
    ctx = root.make_context("gpufence", [], resilient_parsing=True)
    for name, lazy in COMMANDS.items():
        command = root.get_command(ctx, name)
        first = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        assert lazy.help == first, name
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "..." not in out.split("Commands:")[1]  # never cut


def test_root_help_imports_no_command(tmp_path: Any) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from gpufence.cli import main; main(['--help']); "
        "print([m for m in sys.modules if m.startswith('gpufence.') and m not in "
        "('gpufence.cli', 'gpufence.cli._app', 'gpufence.errors')])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["catalog", "H100-SXM5-80GB", "--json"],
        ["mig", "check", "A30", "4g.24gb", "--json"],
    ],
)
def test_json_flag_still_works_with_a_warning(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    assert main(argv) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert "--json is deprecated" in captured.err and "--format json" in captured.err


@pytest.mark.parametrize(("old", "new"), [("error", "high"), ("warning", "medium")])
def test_old_lint_fail_on_values_warn(
    old: str, new: str, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    conf = tmp_path / "p.conf"
    conf.write_text("Default=0x7fff : ALL=limited, SELF=full ;\n")
    assert main(["fabric", "lint", str(conf), "--fail-on", old]) == 0
    assert f"use --fail-on {new}" in capsys.readouterr().err


def test_fail_on_rejects_unknown_level(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    conf = tmp_path / "p.conf"
    conf.write_text("Default=0x7fff : ALL=limited, SELF=full ;\n")
    assert main(["fabric", "lint", str(conf), "--fail-on", "severe"]) == 2
    assert "critical" in capsys.readouterr().err
