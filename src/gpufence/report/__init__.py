"""Renderers: turn an audit result and its summary into text, JSON, SARIF or JUnit.

Renderers never decide anything (the verdict is in the Summary); they only format.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from enum import StrEnum
from typing import TextIO, assert_never

from gpufence.model.findings import AuditResult, Summary
from gpufence.model.history import RunInfo
from gpufence.report.html import render_html, write_html
from gpufence.report.json_ import render_json, write_json
from gpufence.report.junit import render_junit, write_junit
from gpufence.report.sarif import render_sarif, write_sarif
from gpufence.report.text import TextOptions, render_text, write_text

__all__ = [
    "OutputFormat",
    "TextOptions",
    "render",
    "render_html",
    "render_json",
    "render_junit",
    "render_sarif",
    "render_text",
    "write_html",
    "write_report",
    "write_sarif",
]


class OutputFormat(StrEnum):
    """Report formats; a StrEnum (str and Enum) so CLI values and members compare equal."""

    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"
    html = "html"


def render(
    result: AuditResult,
    summary: Summary,
    fmt: OutputFormat,
    *,
    color: bool = False,
    show_pass: bool = False,
    text_options: TextOptions | None = None,
    history: Sequence[RunInfo] = (),
) -> str:
    """Render ``result`` as ``fmt``; ``color`` and the text options only affect the text format
    (every other format keeps every finding); ``history`` (recorded runs, newest first) feeds
    the HTML report's trend."""
    buf = io.StringIO()
    write_report(
        result,
        summary,
        fmt,
        buf,
        color=color,
        show_pass=show_pass,
        text_options=text_options,
        history=history,
    )
    return buf.getvalue()


def write_report(
    result: AuditResult,
    summary: Summary,
    fmt: OutputFormat,
    out: TextIO,
    *,
    color: bool = False,
    show_pass: bool = False,
    text_options: TextOptions | None = None,
    history: Sequence[RunInfo] = (),
) -> None:
    """:func:`render` written to ``out`` as it is produced, in every format: a large fleet's
    report is never held whole in memory (nor the list of all its findings)."""
    fmt = OutputFormat(fmt)  # also accepts the plain string value ("sarif") from a CLI
    if fmt is OutputFormat.text:
        options = text_options or TextOptions(show_pass=show_pass)
        write_text(result, summary, out, color=color, options=options)
    elif fmt is OutputFormat.json:
        write_json(result, summary, out)
    elif fmt is OutputFormat.sarif:
        write_sarif(result, summary, out)
    elif fmt is OutputFormat.junit:
        write_junit(result, summary, out)
    elif fmt is OutputFormat.html:
        write_html(result, summary, out, history)
    else:
        assert_never(fmt)
