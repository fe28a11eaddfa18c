"""`gpufence exporter`: Prometheus metrics from a findings store and a key broker's audit log.

Every scrape reads the store (the newest run of each command and target) and, when given, the
broker's hash-chained audit log (read-only). Labels are bounded: control IDs, planes,
severities, statuses, targets (inventories), commands, broker events/decisions/reason codes;
never fingerprints, resources or messages. See docs/reporting.md for the metric list.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gpufence.attest.broker.audit_log import AuditLogError, verify_audit_log
from gpufence.errors import InputError
from gpufence.model.evidence import CollectorName
from gpufence.model.findings import Plane
from gpufence.store._store import FindingsStore, open_store

__all__ = ["EVIDENCE_PLANE", "PostureCollector", "evidence_plane", "serve"]

EVIDENCE_PLANE: dict[str, Plane] = {
    "node": Plane.GPU,
    "bmc": Plane.OOB,
    "cluster": Plane.K8S,
    "network": Plane.FAB,
    "fabric": Plane.FAB,
    "secrets": Plane.DAT,
}
"""Subject kind -> the plane whose controls read gpufence's evidence about it (for the
evidence-age gauge), so a new collector of an existing kind needs no entry here."""


def evidence_plane(collector: str, subject: str) -> Plane | None:
    """The plane of a document by a gpufence collector (None: another tool's, or no plane)."""
    if collector not in _OURS:
        return None
    return EVIDENCE_PLANE.get(subject.split("/", 1)[0])


_OURS = frozenset(CollectorName)


class PostureCollector(Collector):
    """A prometheus-client collector that reads the store (and broker log) on every scrape."""

    def __init__(
        self,
        store: FindingsStore,
        broker_audit_log: Path | None = None,
        clock: Callable[[], float] = time.time,
        broker_audit_key: bytes | None = None,
    ) -> None:
        self._store = store
        self._broker_log = broker_audit_log
        self._clock = clock
        self._broker_key = broker_audit_key
        """The audit chain's HMAC key (from the broker's KEK); None: integrity not reported."""

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        yield from self._store_metrics()
        if self._broker_log is not None:
            yield from self._broker_metrics(self._broker_log)

    def _store_metrics(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "gpufence_store_up", "1 when the findings store could be read in this scrape"
        )
        findings = GaugeMetricFamily(
            "gpufence_findings",
            "Findings of the newest run of each target, by control, plane, severity and status",
            labels=["command", "target", "control", "plane", "severity", "status"],
        )
        started = GaugeMetricFamily(
            "gpufence_last_run_timestamp_seconds",
            "Start time of the newest run of each target (Unix seconds)",
            labels=["command", "target"],
        )
        duration = GaugeMetricFamily(
            "gpufence_last_run_duration_seconds",
            "Wall-clock duration of the newest run of each target",
            labels=["command", "target"],
        )
        failed = GaugeMetricFamily(
            "gpufence_last_run_failed",
            "1 when the newest run of a target failed its --fail-on threshold, else 0",
            labels=["command", "target"],
        )
        age = GaugeMetricFamily(
            "gpufence_evidence_age_seconds",
            "Age of the oldest evidence the newest run of a target read, per plane",
            labels=["command", "target", "plane"],
        )
        try:
            latest = self._store.latest_runs()
            per_run = [
                (run, self._store.finding_counts(run.id), self._store.evidence(run.id))
                for run in latest
            ]
        except InputError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        now = self._clock()
        for run, counts, stamps in per_run:
            key = [run.command, run.target]
            started.add_metric(key, run.started_at.timestamp())
            duration.add_metric(key, run.duration_s)
            failed.add_metric(key, 1 if run.verdict == "fail" else 0)
            for control, plane, severity, status, n in counts:
                findings.add_metric([*key, control, plane, severity, status], n)
            oldest: dict[str, float] = {}
            for stamp in stamps:
                plane_name = evidence_plane(stamp.collector, stamp.subject)
                label = plane_name.value if plane_name is not None else "other"
                at = stamp.collected_at.timestamp()
                oldest[label] = min(oldest.get(label, at), at)
            for label, at in sorted(oldest.items()):
                age.add_metric([*key, label], max(0.0, now - at))
        yield from (up, findings, started, duration, failed, age)

    def _broker_metrics(self, path: Path) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "gpufence_broker_decisions",
            "Key broker decisions in its audit log: event attest = attestation verdicts, "
            "release = key releases, challenge = nonces issued",
            labels=["event", "decision", "reason"],
        )
        last = GaugeMetricFamily(
            "gpufence_broker_last_decision_timestamp_seconds",
            "Time of the newest audit-log entry per event and decision (Unix seconds)",
            labels=["event", "decision"],
        )
        intact = GaugeMetricFamily(
            "gpufence_broker_audit_log_intact",
            "1 when the broker audit log's hash chain verifies, 0 when it is broken or unreadable",
        )
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = db.execute(
                    "SELECT event, decision, COALESCE(reason, ''), COUNT(*), MAX(ts) "
                    "FROM audit GROUP BY event, decision, reason"
                ).fetchall()
            finally:
                db.close()
            # The chain is keyed (HMAC under a key derived from the KEK): without the key its
            # integrity is unobservable, so the gauge is left out rather than guessed.
            verified = verify_audit_log(path, self._broker_key).ok if self._broker_key else None
        except (sqlite3.Error, OSError, AuditLogError):
            intact.add_metric([], 0)
            yield intact
            return
        newest: dict[tuple[str, str], float] = {}
        for event, decision, reason, n, ts in rows:
            decisions.add_metric([event, decision, reason], n)
            newest[(event, decision)] = max(newest.get((event, decision), ts), ts)
        for (event, decision), ts in sorted(newest.items()):
            last.add_metric([event, decision], ts)
        if verified is None:
            yield from (decisions, last)
            return
        intact.add_metric([], 1 if verified else 0)
        yield from (decisions, last, intact)


def serve(
    store_url: str,
    host: str,
    port: int,
    broker_audit_log: Path | None = None,
    broker_audit_key: bytes | None = None,
) -> tuple[WSGIServer, threading.Thread, FindingsStore]:
    """Start the exporter's HTTP server on ``host:port`` (a thread); returns it and the store.

    Stop with ``server.shutdown()`` and ``store.close()``.
    """
    if broker_audit_log is not None and not broker_audit_log.is_file():
        raise InputError(f"{broker_audit_log}: no such broker audit log")
    store = open_store(store_url)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PostureCollector(store, broker_audit_log, broker_audit_key=broker_audit_key))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        store.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return server, thread, store
