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


def test_json_lines_files_and_directories(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "0.jsonl").write_text(
        json.dumps(DOC) + "\n\n" + json.dumps({**DOC, "subject": "bmc/b1"}) + "\n"
    )
    (shards / "1.jsonl").write_text(json.dumps({**DOC, "subject": "bmc/b2"}) + "\n")
    (shards / ".1.jsonl.123.tmp").write_text("{half a line")  # a writer's unfinished file
    loaded = load_evidence([shards])
    assert [d.subject for d, _ in loaded.documents] == ["node/n1", "bmc/b1", "bmc/b2"]
    assert loaded.problems == ()


def test_json_lines_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "scan.jsonl"
    path.write_text(json.dumps(DOC) + "\n" + json.dumps({**DOC, "subject": "bad subject"}) + "\n")
    (problem,) = load_evidence([path]).problems
    assert problem.location is not None and problem.location.line == 2
    path.write_text(json.dumps(DOC) + "\n{truncated\n")
    (problem,) = load_evidence([path]).problems
    assert "invalid JSON" in str(problem) and problem.location is not None
    assert problem.location.line == 2


@pytest.mark.parametrize("name", ["out.json", "out.jsonl"])
def test_evidence_writer_round_trips_and_survives_an_interruption(
    tmp_path: Path, name: str
) -> None:
    from gpufence.collect.bmc.evidence import EvidenceWriter, write_evidence
    from gpufence.model.evidence import EvidenceDocument

    documents = [EvidenceDocument.model_validate({**DOC, "subject": f"bmc/b{i}"}) for i in range(3)]
    path = tmp_path / name
    write_evidence(documents, path)
    assert [d for d, _ in load_evidence([path]).documents] == documents
    with pytest.raises(KeyboardInterrupt), EvidenceWriter(path) as writer:
        writer.add(documents[0])
        raise KeyboardInterrupt
    assert [d for d, _ in load_evidence([path]).documents] == documents[:1]
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind
