"""Prometheus metrics of one kube-api-auth process (own registry, so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kube_api_auth.index import Index, Kind
from kube_api_auth.review import Result

LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 1.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.reviews = Counter(
            "kube_api_auth_reviews", "TokenReviews answered, by result", ["result"], registry=r
        )
        self.rejected = Counter(
            "kube_api_auth_rejected_requests",
            "Requests refused before review, by HTTP status",
            ["code"],
            registry=r,
        )
        self.latency = Histogram(
            "kube_api_auth_review_seconds",
            "TokenReview handling time",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.index_size = Gauge(
            "kube_api_auth_index_objects", "Objects in the index", ["kind"], registry=r
        )
        self.watch_restarts = Counter(
            "kube_api_auth_watch_restarts",
            "Watch restarts, by resource and reason",
            ["kind", "reason"],
            registry=r,
        )
        self.ready = Gauge("kube_api_auth_ready", "1 once every initial list is done", registry=r)
        # pre-bound children: the review path does one dict lookup, not a labels() call
        self.review_children = {res: self.reviews.labels(result=res.value) for res in Result}

    def watch(self, index: Index) -> None:
        """Keep the index gauges current as the index changes."""

        def changed(_kind: Kind) -> None:
            for kind, size in index.sizes().items():
                self.index_size.labels(kind=kind.value).set(size)
            self.ready.set(1 if index.is_ready() else 0)

        index.listeners.append(changed)
        changed(Kind.TOKENS)
