"""Renderers: turn an audit result and its summary into text, JSON, SARIF or JUnit.

Renderers never decide anything (the verdict is in the Summary); they only format.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import assert_never

from gpufence.model.findings import AuditResult, Summary
from gpufence.model.history import RunInfo
from gpufence.report.html import render_html
from gpufence.report.json_ import render_json
from gpufence.report.junit import render_junit
from gpufence.report.sarif import render_sarif
from gpufence.report.text import TextOptions, render_text

__all__ = [
    "OutputFormat",
    "TextOptions",
    "render",
    "render_html",
    "render_json",
    "render_junit",
    "render_sarif",
    "render_text",
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
    fmt = OutputFormat(fmt)  # also accepts the plain string value ("sarif") from a CLI
    if fmt is OutputFormat.text:
        return render_text(
            result, summary, color=color, options=text_options or TextOptions(show_pass=show_pass)
        )
    if fmt is OutputFormat.json:
        return render_json(result, summary)
    if fmt is OutputFormat.sarif:
        return render_sarif(result, summary)
    if fmt is OutputFormat.junit:
        return render_junit(result, summary)
    if fmt is OutputFormat.html:
        return render_html(result, summary, history)
    assert_never(fmt)
