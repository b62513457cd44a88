"""The server's Prometheus metrics, on a registry of its own (one per app, so that apps in one process, as in the
tests, count apart)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("bertclf_requests", "Requests answered, by status code.", ["status"],
                                registry=self.registry)
        self.latency = Histogram("bertclf_request_seconds", "Time to answer a /predict request.",
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.batch_size = Histogram("bertclf_batch_texts", "Texts per model call.", registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.queue_depth = Gauge("bertclf_queue_texts", "Texts waiting for a model call.", registry=self.registry)
        self.texts = Counter("bertclf_texts", "Texts classified (rate() gives texts/s).", registry=self.registry)
        self.in_flight = Gauge("bertclf_requests_in_flight", "Requests being answered.", registry=self.registry)
