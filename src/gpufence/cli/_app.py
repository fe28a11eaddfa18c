"""The root command group and the group class every sub-app uses.

Start-up is kept short by loading command modules only when they run: the root group lists the
commands from :data:`COMMANDS` (name -> module and one-line help) and imports a module the first
time its command is looked up. ``gpufence --help`` therefore imports typer and nothing of the
library. tests/cli/test_grammar.py checks that the one-line help here is the command's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.models import CommandFunctionType

__all__ = [
    "COMMANDS",
    "GpufenceCommand",
    "GpufenceGroup",
    "GpufenceTyper",
    "LazyCommand",
    "LazyGroup",
    "app",
    "sub_app",
]


def _first_paragraph(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ").strip()


# typer vendors its own click (typer._click); contexts and formatters are typed Any here rather
# than through that private module.


class GpufenceGroup(TyperGroup):
    """A typer group whose command list shows each command's whole first paragraph.

    click cuts the one-line help to the terminal width minus the name and adds "..."; users read
    a cut sentence as the whole description. Here the text wraps instead.
    """

    def short_help_of(self, ctx: Any, name: str) -> str | None:
        """The listing text of command ``name``, or None when it is hidden or unknown."""
        cmd = self.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            return None
        return cmd.short_help or _first_paragraph(cmd.help)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List the commands with their full first paragraph of help, wrapped, never cut."""
        rows = []
        for name in self.list_commands(ctx):
            text = self.short_help_of(ctx, name)
            if text is not None:
                rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class _PlainArgument(TyperArgument):
    """An argument whose help shows its metavar only (typer adds the Python type: ``<str>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        """No type after the metavar: ``INVENTORY``, not ``INVENTORY <file>``."""
        return None


class GpufenceCommand(TyperCommand):
    """A typer command whose arguments show metavars, not Python types, in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                # typer builds the arguments itself and has no hook for their class.
                param.__class__ = _PlainArgument


class GpufenceTyper(typer.Typer):
    """A typer app whose commands default to :class:`GpufenceCommand`."""

    def command(
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        """Register a command (typer's ``command``), with gpufence's command class."""
        kwargs.setdefault("cls", GpufenceCommand)
        return super().command(name, **kwargs)


@dataclass(frozen=True)
class LazyCommand:
    """Where a top-level command lives: ``module`` defines a typer app named ``attr``."""

    module: str
    help: str
    attr: str = "app"


COMMANDS: dict[str, LazyCommand] = {
    "attest": LazyCommand(
        "gpufence.cli.attest", "Verify NVIDIA GPU/NVSwitch attestation evidence offline."
    ),
    "audit": LazyCommand(
        "gpufence.cli.audit",
        "Evaluate every control over the inventory and evidence; print findings.",
    ),
    "broker": LazyCommand(
        "gpufence.cli.broker", "The attestation-gated key broker: serve, audit log, secrets."
    ),
    "catalog": LazyCommand(
        "gpufence.cli.catalog", "Print the GPU capability table, or one model's row."
    ),
    "collect": LazyCommand(
        "gpufence.cli.collect",
        "Node-local collectors: GPU state from NVML or nvidia-smi output.",
    ),
    "controls": LazyCommand(
        "gpufence.cli.controls", "List every control with its plane, severity and title."
    ),
    "diff": LazyCommand(
        "gpufence.cli.runs",
        "Compare two runs by fingerprint: new, fixed, changed status or severity, still open.",
        attr="diff_app",
    ),
    "exporter": LazyCommand(
        "gpufence.cli.exporter",
        "Serve Prometheus metrics: findings by control/plane/severity/status, run times, "
        "evidence age, broker decisions. Runs until interrupted.",
    ),
    "fabric": LazyCommand(
        "gpufence.cli.fabric",
        "Fabric segmentation: partitions.conf linter, who-reaches-whom per plane, observed PKey "
        "tables, partitions.conf emitter.",
    ),
    "k8s": LazyCommand("gpufence.cli.k8s", "Kubernetes GPU-tenancy checks and admission policies."),
    "mig": LazyCommand(
        "gpufence.cli.mig", "MIG geometry: is a set of profiles valid on a GPU, and where."
    ),
    "plan": LazyCommand(
        "gpufence.cli.plan",
        "Decide each tenant's isolation, place all demand, write mig-parted/k8s configs.",
    ),
    "policy": LazyCommand(
        "gpufence.cli.policy", "The isolation policy: tier rules shared by `plan` and `audit`."
    ),
    "runs": LazyCommand(
        "gpufence.cli.runs", "Recorded runs of a findings store: list (default), prune."
    ),
    "scan": LazyCommand("gpufence.cli.scan", "Live scans: scan bmc."),
    "schema": LazyCommand(
        "gpufence.cli.schema",
        "Print the JSON Schema of the inventory, findings or evidence format.",
    ),
}


class LazyGroup(GpufenceGroup):
    """The root group: commands from :data:`COMMANDS`, each module imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command name, without importing any command module."""
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The click command of ``cmd_name``, importing its module the first time."""
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module = importlib.import_module(COMMANDS[cmd_name].module)
        command = typer.main.get_command(getattr(module, COMMANDS[cmd_name].attr))
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command

    def short_help_of(self, ctx: Any, name: str) -> str | None:
        """The listing text from :data:`COMMANDS` (no import), else the loaded command's."""
        if name in COMMANDS and name not in self.commands:
            return COMMANDS[name].help
        return super().short_help_of(ctx, name)


_SETTINGS: dict[str, Any] = {
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}


def sub_app(help: str) -> GpufenceTyper:
    """A command group (``gpufence fabric ...``) or a one-command module's app, uniformly set up."""
    return GpufenceTyper(cls=GpufenceGroup, help=help, **_SETTINGS)


app = typer.Typer(
    name="gpufence",
    cls=LazyGroup,
    help="Plan, audit and attest tenant isolation on multi-tenant GPU clusters.",
    **_SETTINGS,
)
