"""The findings store on SQLite and on a real PostgreSQL server: record, read back, prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from gpufence.errors import InputError
from gpufence.model.findings import Plane, Severity, Status, fingerprint_of
from gpufence.model.history import FindingState, InputDigest
from gpufence.store import (
    EvidenceStamp,
    FindingsStore,
    NewRun,
    default_store_path,
    digest_inputs,
    open_store,
    redact,
    resolve_store_url,
)

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _state(
    control: str, resource: str, status: Status, sev: Severity = Severity.HIGH
) -> FindingState:
    return FindingState(
        fingerprint=fingerprint_of(control, resource),
        control=control,
        plane=Plane.GPU,
        severity=sev,
        status=status,
        resource=resource,
        message=f"{control} on {resource}",
    )


def _run(at: datetime, *states: FindingState, target: str = "inv.yaml") -> NewRun:
    return NewRun(
        started_at=at,
        duration_s=1.25,
        command="audit",
        target=target,
        tool_version="0.1.0",
        policy_digest="abcd" * 4,
        verdict="fail",
        fail_on="low",
        inputs=(InputDigest(path=target, sha256="0" * 64, size=3),),
        evidence=(EvidenceStamp(subject="node/a", collector="nvml", collected_at=at),),
        findings=states,
    )


def test_record_and_read_back(store: FindingsStore) -> None:
    a = _state("GPU-001", "node/a", Status.FAIL, Severity.CRITICAL)
    b = _state("GPU-002", "node/b", Status.PASS)
    c = _state("GPU-003", "node/c", Status.NOT_EVALUATED)
    run_id = store.record(_run(T0, a, b, c))
    [info] = store.runs()
    assert info.id == run_id
    assert info.started_at == T0
    assert info.duration_s == 1.25
    assert info.counts == {Status.FAIL: 1, Status.PASS: 1, Status.NOT_EVALUATED: 1}
    assert info.failed_by_severity == {Severity.CRITICAL: 1}
    assert info.inputs == (InputDigest(path="inv.yaml", sha256="0" * 64, size=3),)
    assert sorted(store.findings(run_id), key=lambda s: s.control) == [a, b, c]
    [stamp] = store.evidence(run_id)
    assert (stamp.collector, stamp.collected_at) == ("nvml", T0)


def test_references_and_order(store: FindingsStore) -> None:
    ids = [store.record(_run(T0 + timedelta(hours=i))) for i in range(3)]
    assert [r.id for r in store.runs()] == ids[::-1]
    assert store.run("latest").id == ids[2]
    assert store.run("latest~2").id == ids[0]
    assert store.run(str(ids[1])).id == ids[1]
    with pytest.raises(InputError, match="no run 999"):
        store.run("999")
    with pytest.raises(InputError, match="needs 4 recorded runs"):
        store.run("latest~3")
    with pytest.raises(InputError, match="not a run"):
        store.run("yesterday")


def test_prune_keep_and_age(store: FindingsStore) -> None:
    f = _state("GPU-001", "node/a", Status.FAIL)
    ids = [store.record(_run(T0 + timedelta(days=i), f)) for i in range(5)]
    assert store.prune(keep=3) == ids[:2]
    assert [r.id for r in store.runs()] == ids[:1:-1]
    assert store.findings(ids[0]) == []
    removed = store.prune(older_than=timedelta(days=2), now=T0 + timedelta(days=4, hours=1))
    assert removed == [ids[2]]
    assert [r.id for r in store.runs()] == [ids[4], ids[3]]
    with pytest.raises(InputError):
        store.prune()


def test_reopen_runs_no_migration_twice(store_url: str) -> None:
    with open_store(store_url) as first:
        first.record(_run(T0))
    with open_store(store_url) as again:
        assert len(again.runs()) == 1
    url = resolve_store_url(store_url)
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"runs", "run_inputs", "run_evidence", "findings", "alembic_version"} <= tables


def test_postgres_scheme_maps_to_psycopg() -> None:
    assert resolve_store_url("postgresql://u@db/x").drivername == "postgresql+psycopg"
    assert resolve_store_url("postgres://u@db/x").drivername == "postgresql+psycopg"
    with pytest.raises(InputError, match="psycopg 3"):
        resolve_store_url("postgresql+psycopg2://u@db/x")
    with pytest.raises(InputError, match="unsupported store"):
        resolve_store_url("mysql://u:pw@db/x")


def test_default_store_is_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_store_path() == tmp_path / "state" / "gpufence" / "store.db"
    with open_store("default") as store:
        assert store.runs() == []
    assert (tmp_path / "state" / "gpufence" / "store.db").is_file()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice:s3cr3t-pw@127.0.0.1:1/db",
        "postgresql://alice@127.0.0.1:1/db?password=s3cr3t-pw",
        "mysql://alice:s3cr3t-pw@db/x",
    ],
)
def test_passwords_never_in_messages(url: str) -> None:
    assert "s3cr3t-pw" not in redact(url)
    with pytest.raises(InputError) as caught:
        open_store(url)
    assert "s3cr3t-pw" not in caught.value.diagnostics()
    assert "alice" in caught.value.diagnostics()  # still says which account


def test_unreachable_server_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot open"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_digest_inputs(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(b"abc")
    [known, missing] = digest_inputs([str(path), str(tmp_path / "gone.json")])
    assert known.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert known.size == 3
    assert missing.sha256 is None


def test_cli_default_store_name_matches() -> None:
    from gpufence.cli._output import DEFAULT_STORE as CLI_DEFAULT
    from gpufence.store import DEFAULT_STORE

    assert CLI_DEFAULT == DEFAULT_STORE


def test_migrations_match_the_schema_module(store_url: str) -> None:
    # _schema.py (what the code queries) and the Alembic revisions (what a store gets) agree.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gpufence.store._schema import metadata

    open_store(store_url).close()
    engine = create_engine(resolve_store_url(store_url))
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_run_of_many_findings_is_inserted_in_chunks(
    store: FindingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gpufence.store._store as store_module
    from gpufence.audit import audit
    from gpufence.model.history import state_of, states_of

    monkeypatch.setattr(store_module, "_INSERT_ROWS", 7)
    example = Path(__file__).resolve().parents[2] / "examples" / "neocloud"
    findings = audit(example / "inventory.yaml", [example / "evidence"]).result.findings
    assert len(findings) > 3 * 7 and len(findings) % 7  # several chunks and a short last one
    run = _run(T0).model_copy(update={"findings": states_of(findings)})
    run_id = store.record(run)
    expected = sorted((state_of(f) for f in findings), key=lambda s: s.fingerprint)
    assert sorted(store.findings(run_id), key=lambda s: s.fingerprint) == expected
