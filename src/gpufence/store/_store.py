"""The findings store: record runs, read them back, prune them (SQLAlchemy Core, any backend)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from itertools import islice
from pathlib import Path

from sqlalchemy import Engine, create_engine, delete, func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from gpufence._frozen import Frozen
from gpufence.errors import InputError
from gpufence.model.findings import Severity, Status
from gpufence.model.history import FindingState, FindingStates, InputDigest, RunInfo
from gpufence.store import _schema as t
from gpufence.store._url import redact, resolve_store_url

__all__ = ["EvidenceStamp", "FindingsStore", "NewRun", "digest_inputs", "open_store"]

_CHUNK = 1 << 20
_INSERT_ROWS = 5000
"""Findings inserted per statement."""


class EvidenceStamp(Frozen):
    """When a collector observed a subject (the store keeps it for evidence-age metrics)."""

    subject: str
    collector: str
    collected_at: datetime


class NewRun(Frozen):
    """Everything recorded about one run."""

    started_at: datetime
    duration_s: float
    command: str
    target: str
    tool_version: str
    policy_digest: str
    verdict: str
    fail_on: str
    inputs: tuple[InputDigest, ...] = ()
    evidence: tuple[EvidenceStamp, ...] = ()
    findings: FindingStates = ()
    """A tuple, or :func:`~gpufence.model.history.states_of` the run's findings (made as they
    are inserted, a chunk at a time)."""


def _chunks(items: Iterable[FindingState], size: int) -> Iterator[list[FindingState]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def digest_inputs(paths: Iterable[str]) -> tuple[InputDigest, ...]:
    """SHA-256 and size of each input file (streamed); None for what is not a readable file."""
    out: list[InputDigest] = []
    for name in paths:
        path = Path(name)
        try:
            sha = hashlib.sha256()
            size = 0
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
            out.append(InputDigest(path=name, sha256=sha.hexdigest(), size=size))
        except OSError:
            out.append(InputDigest(path=name, sha256=None, size=None))
    return tuple(out)


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes: everything is stored in UTC, so reattach it.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_REF = re.compile(r"^(?:(?P<id>\d+)|(?P<latest>latest|last)(?:~(?P<back>\d+))?)$")


class FindingsStore:
    """A findings store opened by :func:`open_store`; close it (or use ``with``)."""

    def __init__(self, engine: Engine, shown_url: str) -> None:
        self._engine = engine
        self.url = shown_url
        """The URL with any password redacted: safe to print."""

    def __enter__(self) -> FindingsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    def _fail(self, action: str, exc: SQLAlchemyError) -> InputError:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return InputError(f"store {self.url}: cannot {action}: {reason}")

    def record(self, run: NewRun) -> int:
        """Store ``run`` in one transaction; returns its id."""
        try:
            with self._engine.begin() as conn:
                run_id = conn.execute(
                    insert(t.runs)
                    .values(
                        started_at=_utc(run.started_at),
                        duration_s=run.duration_s,
                        command=run.command,
                        target=run.target,
                        tool_version=run.tool_version,
                        policy_digest=run.policy_digest,
                        verdict=run.verdict,
                        fail_on=run.fail_on,
                    )
                    .returning(t.runs.c.id)
                ).scalar_one()
                if run.inputs:
                    conn.execute(
                        insert(t.inputs),
                        [{"run_id": run_id, **i.model_dump()} for i in run.inputs],
                    )
                if run.evidence:
                    conn.execute(
                        insert(t.evidence),
                        [
                            {
                                "run_id": run_id,
                                "subject": e.subject,
                                "collector": e.collector,
                                "collected_at": _utc(e.collected_at),
                            }
                            for e in run.evidence
                        ],
                    )
                # In chunks: a fleet's run has hundreds of thousands of findings, and one
                # parameter list for all of them held ~1 KB per finding at once.
                for chunk in _chunks(run.findings, _INSERT_ROWS):
                    conn.execute(
                        insert(t.findings),
                        [{"run_id": run_id, **f.model_dump(mode="json")} for f in chunk],
                    )
        except SQLAlchemyError as exc:
            raise self._fail("record the run", exc) from None
        return int(run_id)

    def runs(
        self,
        *,
        limit: int | None = None,
        target: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[RunInfo]:
        """Recorded runs, newest first (with their inputs and counts)."""
        query = select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc())
        if ids is not None:
            query = query.where(t.runs.c.id.in_(list(ids)))
        if target is not None:
            query = query.where(t.runs.c.target == target)
        if limit is not None:
            query = query.limit(limit)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
                ids = [row["id"] for row in rows]
                if not ids:
                    return []
                counts: dict[int, dict[Status, int]] = {i: {} for i in ids}
                failed: dict[int, dict[Severity, int]] = {i: {} for i in ids}
                for run_id, status, severity, n in conn.execute(
                    select(
                        t.findings.c.run_id,
                        t.findings.c.status,
                        t.findings.c.severity,
                        func.count(),
                    )
                    .where(t.findings.c.run_id.in_(ids))
                    .group_by(t.findings.c.run_id, t.findings.c.status, t.findings.c.severity)
                ):
                    st = Status(status)
                    counts[run_id][st] = counts[run_id].get(st, 0) + n
                    if st is Status.FAIL:
                        failed[run_id][Severity(severity)] = n
                digests: dict[int, list[InputDigest]] = {i: [] for i in ids}
                for row in conn.execute(
                    select(t.inputs).where(t.inputs.c.run_id.in_(ids)).order_by(t.inputs.c.id)
                ).mappings():
                    digests[row["run_id"]].append(
                        InputDigest(path=row["path"], sha256=row["sha256"], size=row["size"])
                    )
        except SQLAlchemyError as exc:
            raise self._fail("read runs", exc) from None
        return [
            RunInfo(
                id=row["id"],
                started_at=_utc(row["started_at"]),
                duration_s=row["duration_s"],
                command=row["command"],
                target=row["target"],
                tool_version=row["tool_version"],
                policy_digest=row["policy_digest"],
                verdict=row["verdict"],
                fail_on=row["fail_on"],
                inputs=tuple(digests[row["id"]]),
                counts=counts[row["id"]],
                failed_by_severity=failed[row["id"]],
            )
            for row in rows
        ]

    def run(self, ref: str | int) -> RunInfo:
        """The run named by ``ref``: its id, 'latest' (or 'last'), or 'latest~N' (N before)."""
        match = _REF.match(str(ref).strip())
        if match is None:
            raise InputError(f"{ref!r} is not a run: give a run id, 'latest' or 'latest~N'")
        if match["id"] is not None:
            found = self.runs(ids=[int(match["id"])])
            if not found:
                raise InputError(f"store {self.url}: no run {match['id']} (see gpufence runs)")
            return found[0]
        back = int(match["back"] or 0)
        recent = self.runs(limit=back + 1)
        if len(recent) <= back:
            raise InputError(
                f"store {self.url}: {ref} needs {back + 1} recorded runs, it has {len(recent)}"
            )
        return recent[back]

    def latest_runs(self) -> list[RunInfo]:
        """The newest run of each (command, target): what a dashboard shows as current."""
        newest = select(func.max(t.runs.c.id)).group_by(t.runs.c.command, t.runs.c.target)
        try:
            with self._engine.connect() as conn:
                ids = list(conn.execute(newest).scalars())
        except SQLAlchemyError as exc:
            raise self._fail("read runs", exc) from None
        return self.runs(ids=ids) if ids else []

    def finding_counts(self, run_id: int) -> list[tuple[str, str, str, str, int]]:
        """(control, plane, severity, status, count) of one run, counted by the database."""
        c = t.findings.c
        query = (
            select(c.control, c.plane, c.severity, c.status, func.count())
            .where(c.run_id == run_id)
            .group_by(c.control, c.plane, c.severity, c.status)
            .order_by(c.control, c.status)
        )
        try:
            with self._engine.connect() as conn:
                return [(a, b, d, e, int(n)) for a, b, d, e, n in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise self._fail("count findings", exc) from None

    def findings(self, run_id: int) -> list[FindingState]:
        """The findings of one run, by fingerprint."""
        query = select(
            t.findings.c.fingerprint,
            t.findings.c.control,
            t.findings.c.plane,
            t.findings.c.severity,
            t.findings.c.status,
            t.findings.c.resource,
            t.findings.c.message,
        ).where(t.findings.c.run_id == run_id)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query.order_by(t.findings.c.id)).mappings().all()
        except SQLAlchemyError as exc:
            raise self._fail("read findings", exc) from None
        return [FindingState.model_validate(dict(row)) for row in rows]

    def evidence(self, run_id: int) -> list[EvidenceStamp]:
        """When each evidence document of one run was collected."""
        query = select(
            t.evidence.c.subject, t.evidence.c.collector, t.evidence.c.collected_at
        ).where(t.evidence.c.run_id == run_id)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise self._fail("read evidence", exc) from None
        return [EvidenceStamp(subject=s, collector=c, collected_at=_utc(at)) for s, c, at in rows]

    def prune(
        self,
        *,
        keep: int | None = None,
        older_than: timedelta | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Delete runs beyond the newest ``keep`` and/or older than ``older_than``; their ids."""
        if keep is None and older_than is None:
            raise InputError("prune needs --keep N or --older-than DAYS")
        doomed: set[int] = set()
        ordered = select(t.runs.c.id, t.runs.c.started_at).order_by(
            t.runs.c.started_at.desc(), t.runs.c.id.desc()
        )
        try:
            with self._engine.begin() as conn:
                rows = conn.execute(ordered).all()
                if keep is not None:
                    doomed.update(run_id for run_id, _ in rows[keep:])
                if older_than is not None:
                    cutoff = (now or datetime.now(UTC)) - older_than
                    doomed.update(run_id for run_id, at in rows if _utc(at) < cutoff)
                if doomed:
                    ids = sorted(doomed)
                    # Children first: SQLite enforces ON DELETE CASCADE only with a pragma.
                    for table in (t.findings, t.evidence, t.inputs):
                        conn.execute(delete(table).where(table.c.run_id.in_(ids)))
                    conn.execute(delete(t.runs).where(t.runs.c.id.in_(ids)))
        except SQLAlchemyError as exc:
            raise self._fail("prune runs", exc) from None
        return sorted(doomed)


def _migrate(engine: Engine) -> None:
    # Imported here: alembic costs a noticeable part of the CLI's start-up otherwise.
    from alembic import command
    from alembic.config import Config

    config = Config()
    location = resources.files("gpufence.store") / "migrations"
    config.set_main_option("script_location", str(location))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_store(store: str) -> FindingsStore:
    """Open (creating and migrating to the newest schema) the store named by ``--store``."""
    url: URL = resolve_store_url(store)
    shown = redact(url.render_as_string(hide_password=False))
    if url.get_backend_name() == "sqlite" and url.database:
        parent = Path(url.database).expanduser().parent
        if not parent.is_dir():
            raise InputError(f"store {shown}: directory {parent} does not exist")
    try:
        engine = create_engine(url, pool_pre_ping=True)
        _migrate(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise InputError(f"store {shown}: cannot open: {reason}") from None
    return FindingsStore(engine, shown)
