"""Prometheus metrics of the gateway (text exposition at ``GET /metrics``).

Judging metrics live in :data:`REGISTRY`, HTTP ingest's in :data:`INGEST_REGISTRY`: with
``crg gateway --processes N`` the members judge and the parent serves HTTP, so the parent
exposes its own ingest counts next to the members' judging metrics, summed from
``PROMETHEUS_MULTIPROC_DIR`` (:func:`members_registry`).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
INGEST_REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "crg_gateway_events",
    "Events judged, by verdict and reason code.",
    ["verdict", "reason"],
    registry=REGISTRY,
)
ALERTS = Counter("crg_gateway_alerts", "Alerts raised, by kind.", ["alert"], registry=REGISTRY)
BATCH_SECONDS = Histogram(
    "crg_gateway_batch_seconds",
    "Time to judge and commit one batch.",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "crg_gateway_batch_size",
    "Messages per batch.",
    registry=REGISTRY,
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
LAG = Gauge(
    "crg_gateway_lag",
    "Messages behind the end of the raw topic, by partition.",
    ["partition"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # a partition's latest owner says
)
INGESTED = Counter(
    "crg_http_ingest", "HTTP ingest answers, by status.", ["status"], registry=INGEST_REGISTRY
)


def members_registry(path: Path) -> CollectorRegistry:
    """The judging metrics of every gateway process writing to ``path``, summed."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return registry
