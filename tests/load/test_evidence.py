"""Evidence loading: directories, several documents per file, bad files skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpufence.errors import InputError
from gpufence.load.evidence import load_evidence

DOC = {
    "schema": "gpufence.evidence/v1",
    "subject": "node/n1",
    "collector": "nvidia-smi",
    "collected_at": "2026-11-20T00:00:00Z",
    "observed": {"gpu_state.ecc": True},
}


def test_directory_and_multi_document_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(DOC))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.json").write_text(json.dumps({"evidence": [DOC, {**DOC, "subject": "bmc/b1"}]}))
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = load_evidence([tmp_path])
    assert [d.subject for d, _ in loaded.documents] == ["node/n1", "node/n1", "bmc/b1"]
    assert loaded.documents[2][1].endswith("b.json")
    assert loaded.problems == ()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{oops", "invalid JSON"),
        (json.dumps({**DOC, "schema": "other/v9"}), "not a gpufence evidence document"),
        (json.dumps({**DOC, "subject": "gpu a01"}), "subject"),
    ],
)
def test_bad_files_are_reported_and_skipped(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    (tmp_path / "good.json").write_text(json.dumps(DOC))
    loaded = load_evidence([tmp_path])
    assert len(loaded.documents) == 1
    (problem,) = loaded.problems
    assert fragment in problem.diagnostics() and "bad.json" in problem.diagnostics()


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_evidence([tmp_path / "absent"])
