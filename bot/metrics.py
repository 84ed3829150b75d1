"""Prometheus metrics of the App, in two sets: the intake's and the workers' (a registry each).

The intake process and the workers' process count their own; /metrics, served by the intake,
shows both (the workers' text comes over the link between the two processes). The families
differ, so the two texts concatenate into one valid exposition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Job durations span from milliseconds (ignored events) to minutes (load tests).
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800)

#: The content type of the exposition text /metrics answers with.
CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class IntakeMetrics:
    """The webhook intake's instruments, registered in their own registry."""

    registry: CollectorRegistry
    """Registry these instruments live in (not the global one: several apps per process)."""
    deliveries: Counter
    """Webhook requests by outcome (accepted/rejected) and reason."""
    writer_starts: Counter
    """Delivery writer processes started (SQLite): more than one means one was replaced."""
    _delivery_counts: dict[str, Counter] = field(default_factory=dict)
    """The labelled children of `deliveries` by reason (looking one up is not free)."""

    def count_delivery(self, status: int, reason: str) -> None:
        """Count one webhook request by the answer it got."""
        counter = self._delivery_counts.get(reason)
        if counter is None:
            outcome = "accepted" if status < 300 else "rejected"
            counter = self._delivery_counts[reason] = self.deliveries.labels(outcome, reason)
        counter.inc()

    def render(self) -> str:
        """The exposition text of these instruments."""
        return generate_latest(self.registry).decode()


@dataclass(frozen=True, slots=True)
class Metrics:
    """The workers' instruments: the queue and the jobs."""

    registry: CollectorRegistry
    """Registry these instruments live in."""
    queue_depth: Gauge
    """Deliveries queued or running, refreshed at each scrape."""
    job_duration: Histogram
    """Seconds spent handling a delivery, by outcome (done/retry/dead)."""
    intake_starts: Counter
    """Intake processes started by `serve`: more than one means one was replaced."""

    def render(self) -> str:
        """The exposition text of these instruments."""
        return generate_latest(self.registry).decode()


def create_intake_metrics() -> IntakeMetrics:
    """Fresh intake instruments in a fresh registry."""
    registry = CollectorRegistry()
    return IntakeMetrics(
        registry=registry,
        deliveries=Counter(
            "connector_gate_webhook_deliveries",
            "Webhook requests by outcome and reason.",
            ["outcome", "reason"],
            registry=registry,
        ),
        writer_starts=Counter(
            "connector_gate_delivery_writer_starts",
            "Delivery writer processes started (SQLite); more than one: one was replaced.",
            registry=registry,
        ),
    )


def create_metrics() -> Metrics:
    """Fresh workers' instruments in a fresh registry."""
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        queue_depth=Gauge(
            "connector_gate_queue_depth",
            "Deliveries queued or running.",
            registry=registry,
        ),
        job_duration=Histogram(
            "connector_gate_job_duration_seconds",
            "Time spent handling one delivery.",
            ["outcome"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        ),
        intake_starts=Counter(
            "connector_gate_intake_starts",
            "Intake processes started by serve; more than one: one was replaced.",
            registry=registry,
        ),
    )
