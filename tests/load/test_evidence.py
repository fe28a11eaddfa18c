"""Evidence loading and the evidence rules of docs/evidence.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gpufence.errors import InputError
from gpufence.load.evidence import EvidenceRules, load_evidence, parse_max_ages

NOW = datetime(2026, 11, 21, tzinfo=UTC)
RULES = EvidenceRules(now=NOW)

DOC = {
    "schema": "gpufence.evidence/v1",
    "subject": "node/n1",
    "collector": "nvidia-smi",
    "collected_at": "2026-11-20T00:00:00Z",  # rules below judge it as of NOW
    "observed": {"gpu_state.ecc": True},
}


def test_directory_and_multi_document_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(DOC))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.json").write_text(json.dumps({"evidence": [DOC, {**DOC, "subject": "bmc/b1"}]}))
    (tmp_path / "notes.txt").write_text("ignored")
    loaded = load_evidence([tmp_path], RULES)
    assert [d.subject for d, _ in loaded.documents] == ["node/n1", "node/n1", "bmc/b1"]
    assert loaded.documents[2][1].endswith("b.json")
    assert loaded.bad == () and loaded.stale == ()


BAD_FILES = [
    ("{oops", "invalid JSON"),
    (json.dumps({**DOC, "schema": "other/v9"}), "not a gpufence evidence document"),
    (json.dumps({**DOC, "schema": "gpufence.evidence/v999"}), "unknown evidence schema version"),
    (json.dumps({**DOC, "subject": "gpu a01"}), "subject"),
    (json.dumps({**DOC, "collected_at": "2099-01-01T00:00:00Z"}), "in the future"),
    (b"\xff\xfe{}", "not UTF-8"),
]


@pytest.mark.parametrize(("content", "fragment"), BAD_FILES)
def test_bad_files_are_input_errors_naming_the_file(
    tmp_path: Path, content: str | bytes, fragment: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "good.json").write_text(json.dumps(DOC))
    with pytest.raises(InputError) as caught:
        load_evidence([tmp_path], RULES)
    assert fragment in caught.value.diagnostics() and "bad.json" in caught.value.diagnostics()


@pytest.mark.parametrize(("content", "fragment"), BAD_FILES)
def test_bad_files_are_kept_as_bad_evidence_when_skipping(
    tmp_path: Path, content: str | bytes, fragment: str
) -> None:
    (tmp_path / "bad.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "good.json").write_text(json.dumps(DOC))
    loaded = load_evidence([tmp_path], EvidenceRules(now=NOW, skip_bad=True))
    assert len(loaded.documents) == 1
    (problem,) = loaded.bad
    assert fragment in problem.error.diagnostics() and problem.file.endswith("bad.json")


def test_small_clock_skew_is_accepted(tmp_path: Path) -> None:
    ahead = {**DOC, "collected_at": "2026-11-21T00:04:00Z"}  # 4 minutes ahead of NOW
    (tmp_path / "a.json").write_text(json.dumps(ahead))
    assert len(load_evidence([tmp_path], RULES).documents) == 1


def test_old_evidence_is_stale_with_its_age(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text(json.dumps({**DOC, "collected_at": "1970-01-01T00:00:00Z"}))
    (tmp_path / "new.json").write_text(json.dumps(DOC))
    loaded = load_evidence([tmp_path], RULES)
    assert [origin for _, origin in loaded.documents] == [str(tmp_path / "new.json")]
    (stale,) = loaded.stale
    assert "old.json" in stale.reason and "20778 days old" in stale.reason
    assert "7 days" in stale.reason


def test_age_limit_per_kind(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        json.dumps({"evidence": [DOC, {**DOC, "subject": "bmc/b1", "observed": {}}]})
    )
    rules = EvidenceRules(
        now=NOW, max_age=timedelta(hours=1), max_age_by_kind={"bmc": timedelta(days=30)}
    )
    loaded = load_evidence([tmp_path], rules)
    assert [d.subject for d, _ in loaded.documents] == ["bmc/b1"]
    assert [s.document.subject for s in loaded.stale] == ["node/n1"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["12h"], (timedelta(hours=12), {})),
        (["bmc=30d", "2w"], (timedelta(weeks=2), {"bmc": timedelta(days=30)})),
    ],
)
def test_parse_max_ages(values: list[str], expected: object) -> None:
    assert parse_max_ages(values) == expected


@pytest.mark.parametrize(("value", "fragment"), [("7 days", "not an age"), ("bnc=1d", "'bmc'")])
def test_parse_max_ages_rejects(value: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_max_ages([value])
    assert fragment in caught.value.diagnostics()


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
    loaded = load_evidence([shards], RULES)
    assert [d.subject for d, _ in loaded.documents] == ["node/n1", "bmc/b1", "bmc/b2"]
    assert loaded.bad == () and loaded.stale == ()


def test_json_lines_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "scan.jsonl"
    path.write_text(json.dumps(DOC) + "\n{truncated\n")
    with pytest.raises(InputError) as caught:
        load_evidence([path], RULES)
    assert "invalid JSON" in str(caught.value)
    assert caught.value.location is not None and caught.value.location.line == 2
    path.write_text(json.dumps(DOC) + "\n" + json.dumps({**DOC, "subject": "bad subject"}) + "\n")
    with pytest.raises(InputError) as caught:
        load_evidence([path], RULES)
    assert "subject" in caught.value.diagnostics() and "scan.jsonl" in caught.value.diagnostics()


@pytest.mark.parametrize("name", ["out.json", "out.jsonl"])
def test_evidence_writer_round_trips_and_survives_an_interruption(
    tmp_path: Path, name: str
) -> None:
    from gpufence.collect.bmc.evidence import EvidenceWriter, write_evidence
    from gpufence.model.evidence import EvidenceDocument

    documents = [EvidenceDocument.model_validate({**DOC, "subject": f"bmc/b{i}"}) for i in range(3)]
    path = tmp_path / name
    write_evidence(documents, path)
    assert [d for d, _ in load_evidence([path], RULES).documents] == documents
    with pytest.raises(KeyboardInterrupt), EvidenceWriter(path) as writer:
        writer.add(documents[0])
        raise KeyboardInterrupt
    assert [d for d, _ in load_evidence([path], RULES).documents] == documents[:1]
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bad.json", b'{"schema": "gpufence.evidence/v1",\n  "subject": "node/a\xff"}\n', ":2:21"),
        ("bad.jsonl", b'{"a": 1}\n{"subject": "x\xfe"}\n', ":2:15"),
    ],
)
def test_undecodable_evidence_names_line_and_column(
    tmp_path: Path, name: str, content: bytes, where: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_evidence([bad], RULES)
    text = caught.value.diagnostics()
    assert f"{name}{where}:" in text and "not UTF-8" in text
