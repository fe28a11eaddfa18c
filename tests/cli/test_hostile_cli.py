"""Secrets never echoed, non-text never linted (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufence.cli import main
from gpufence.errors import redact_secrets


@pytest.mark.parametrize(
    "target",
    [
        "https://admin:hunter2-secret@bmc1",
        "lab=https://root:hunter2-secret@10.0.0.1:99999",
        "ftp://u:hunter2-secret@bmc1",
    ],
)
def test_a_password_in_a_target_url_is_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    code = main(["scan", "bmc", "--target", target, "--out", str(tmp_path / "ev.json")])
    err = capsys.readouterr().err
    assert code == 2 and "hunter2-secret" not in err and ":***@" in err, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://u:p%40ss@h/x", "see https://u:***@h/x"),
        ("https://h/?password=abc&x=1", "https://h/?password=***&x=1"),
        ("postgresql://gf:pw@127.0.0.1:5432/db", "postgresql://gf:***@127.0.0.1:5432/db"),
        ("no secret in https://h:443/x", "no secret in https://h:443/x"),
    ],
)
def test_redact_secrets(text: str, expected: str) -> None:
    assert redact_secrets(text) == expected


@pytest.mark.parametrize(
    ("content", "where"),
    [(b"Default=0x7fff : ALL=full;\n\x00\x01\x02", ":2:1"), (b"\x89PNG\r\n\x1a\n", ":1:1")],
)
def test_fabric_lint_exits_2_on_input_that_is_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, where: str
) -> None:
    path = tmp_path / "partitions.conf"
    path.write_bytes(content)
    assert main(["fabric", "lint", str(path)]) == 2
    assert f"{path}{where}: not a text file" in capsys.readouterr().err
