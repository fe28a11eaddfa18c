"""Progress off a terminal: periodic lines on stderr, nothing for short runs."""

from __future__ import annotations

import time

import pytest

from gpufence.cli._progress import counter, heartbeat


def test_counter_prints_lines_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GPUFENCE_PROGRESS_SECONDS", "0.05")
    with counter("scan bmc: BMCs scanned", 5, bar=False) as advance:
        for _ in range(5):
            time.sleep(0.06)
            advance()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2
    assert lines[0].startswith("gpufence: scan bmc: BMCs scanned: 1/5")
    assert lines[-1].startswith("gpufence: scan bmc: BMCs scanned: 5/5 done")


def test_counter_is_quiet_for_a_short_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GPUFENCE_PROGRESS_SECONDS", "30")
    with counter("x", 3, bar=False) as advance:
        for _ in range(3):
            advance()
    assert capsys.readouterr().err == ""


def test_heartbeat_beats_while_the_block_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GPUFENCE_PROGRESS_SECONDS", "0.05")
    with heartbeat("plan"):
        time.sleep(0.3)
    beats = capsys.readouterr().err.splitlines()
    assert len(beats) >= 2 and all(b.startswith("gpufence: plan: still running (") for b in beats)
    time.sleep(0.15)  # the thread stopped with the block
    assert capsys.readouterr().err == ""


def test_bad_interval_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpufence.cli._progress import interval

    monkeypatch.setenv("GPUFENCE_PROGRESS_SECONDS", "soon")
    assert interval() == 10.0
