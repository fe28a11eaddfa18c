"""The one error hierarchy of gpufence.

Every error the library raises on purpose derives from :class:`GpufenceError`. The CLI catches it
once, prints :meth:`GpufenceError.diagnostics` and exits with :attr:`GpufenceError.exit_code`
(2 for bad input or command line, 3 for internal errors). Anything else is a bug (exit 3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "GpufenceError",
    "InputError",
    "InputErrors",
    "InternalError",
    "SourceLocation",
    "UnknownGpuModelError",
    "redact_secrets",
]


# userinfo of a URL ("https://user:password@host"), and secret-looking query parameters.
_URL_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:'\"]*):[^/@\s'\"]*@"
)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?token)=)[^&\s'\"#]*",
    re.IGNORECASE,
)


def redact_secrets(text: str) -> str:
    """``text`` with passwords in URLs and secret query parameters replaced by ``***``.

    Every message gpufence prints goes through this: a password typed into ``--target
    https://user:pw@host`` must not be echoed into a terminal, a CI log or a report.
    """
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}***", text)


class SourceLocation:
    """A place in an input file (1-based line and column), for messages and SARIF."""

    __slots__ = ("column", "file", "line")

    def __init__(self, file: str | Path | None, line: int | None = None, column: int | None = None):
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column

    def __str__(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __repr__(self) -> str:
        return f"SourceLocation({self!s})"


class GpufenceError(Exception):
    """Base of every deliberate gpufence error."""

    exit_code: int = 3

    def diagnostics(self) -> str:
        """Human-readable, one-screen explanation (no traceback)."""
        return str(self)


class InputError(GpufenceError):
    """The input (a file, an argument) is wrong. Exit code 2.

    The message names the file, line and column where there is one, and what was expected.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def with_location(self, location: SourceLocation) -> InputError:
        """A copy of this error placed at ``location`` (keeps the subclass and hint)."""
        err = InputError(self.message, location=location, hint=self.hint)
        return err

    def diagnostics(self) -> str:
        """The message as printed: ``file:line:column: message`` and the hint, if any."""
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return redact_secrets(text)


class InputErrors(InputError):
    """Several input errors found in one pass; each keeps its own location."""

    def __init__(self, errors: Sequence[InputError]) -> None:
        super().__init__(errors[0].message, location=errors[0].location, hint=errors[0].hint)
        self.errors = tuple(errors)

    def diagnostics(self) -> str:
        """Every collected error's diagnostics, one after another."""
        lines = [err.diagnostics() for err in self.errors[:20]]
        if len(self.errors) > 20:
            lines.append(f"... and {len(self.errors) - 20} more errors")
        return "\n".join(lines)


class UnknownGpuModelError(InputError):
    """A GPU model name or PCI device ID that the silicon catalog does not know."""

    def __init__(self, name: str, closest: Sequence[str]) -> None:
        msg = f"unknown GPU model {name!r}"
        if closest:
            msg += "; closest: " + ", ".join(closest)
        super().__init__(msg, hint="`gpufence catalog` lists every known model and alias")
        self.name = name
        self.closest = tuple(closest)


class AmbiguousGpuModelError(InputError):
    """A GPU name that fits several catalog models which controls would judge differently."""

    def __init__(self, name: str, variants: Sequence[str], differ: Sequence[str]) -> None:
        msg = (
            f"GPU model {name!r} is ambiguous: it fits {', '.join(variants)}, which differ in "
            f"{', '.join(differ)}"
        )
        super().__init__(msg, hint="name one variant (e.g. " + variants[0] + ")")
        self.name = name
        self.variants = tuple(variants)
        self.differ = tuple(differ)


class InternalError(GpufenceError):
    """A bug or an impossible state. Exit code 3."""

    exit_code = 3
