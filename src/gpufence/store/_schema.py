"""The store's tables (SQLAlchemy Core). A change needs a new Alembic revision (migrations/)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["evidence", "findings", "inputs", "metadata", "runs"]

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("command", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("tool_version", String(64), nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("fail_on", String(16), nullable=False),
    Index("ix_runs_started_at", "started_at"),
)

inputs = Table(
    "run_inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("size", BigInteger, nullable=True),
    Index("ix_run_inputs_run_id", "run_id"),
)

evidence = Table(
    "run_evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("subject", Text, nullable=False),
    Column("collector", String(64), nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Index("ix_run_evidence_run_id", "run_id"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("control", String(32), nullable=False),
    Column("plane", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("resource", Text, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_findings_run_id", "run_id"),
    Index("ix_findings_fingerprint", "fingerprint"),
)
