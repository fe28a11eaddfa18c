"""`gpufence plan`: isolation plan + generated artifacts (issue 3)."""

from __future__ import annotations

from gpufence.cli._app import app  # noqa: F401 - the planner registers `plan` here
