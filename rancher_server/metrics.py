"""Prometheus metrics of the tunnel endpoint. Counters live in the sessions' own stats and are read
at scrape time, so the data path pays nothing for them. Every replica exports its own, with
``rancher_server_replica_info{replica, store}`` saying which replica it is: Prometheus sums the
per-replica figures over replicas (``docs/architecture.md``, "Replicas", says which are
deployment-wide and taken with max() instead)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.httpguard import GuardCounters

# the per-peer bounds an agent can be cut off for (each always exported, 0 until it happens)
BOUNDS = ("control_queue", "data_queue", "streams", "messages", "reports")


class TunnelCollector(Collector):
    def __init__(self, registry: SessionRegistry) -> None:
        self._registry = registry
        self.closed_bytes_in = 0
        self.closed_bytes_out = 0
        self.sessions_total = 0
        self.bound_disconnects: dict[str, int] = {}  # bound -> agents cut off for it
        self.closed_dials_over_limit = 0

    def collect(self) -> Iterator[Metric]:
        sessions = GaugeMetricFamily(
            "rancher_tunnel_sessions", "Connected agent sessions", labels=["role"]
        )
        streams = GaugeMetricFamily("rancher_tunnel_streams", "Open tunnel streams")
        rtt = GaugeMetricFamily(
            "rancher_tunnel_rtt_seconds", "Last measured keepalive round trip", labels=["session"]
        )
        bytes_in = CounterMetricFamily(
            "rancher_tunnel_received_bytes", "Bytes received over agent tunnels"
        )
        bytes_out = CounterMetricFamily(
            "rancher_tunnel_sent_bytes", "Bytes sent over agent tunnels"
        )
        accepted = CounterMetricFamily(
            "rancher_tunnel_sessions_accepted", "Agent sessions accepted since start"
        )
        bounds = CounterMetricFamily(
            "rancher_tunnel_bound_disconnects",
            "Agent sessions cut off for exceeding a per-peer bound",
            labels=["bound"],
        )
        dials_over = CounterMetricFamily(
            "rancher_tunnel_dials_over_limit",
            "Dials refused because too many were waiting for the agent",
        )
        # the listener's own (httpguard): connections closed before a complete request head
        unheaded = CounterMetricFamily(
            "rancher_http_connections_closed",
            "Connections closed before a complete first request head, by reason",
            labels=["reason"],
        )
        unheaded.add_metric(["header_deadline"], GuardCounters.header_timeouts)
        unheaded.add_metric(["pending_per_source"], GuardCounters.pending_per_source)
        by_role = {"cluster": 0, "node": 0}
        n_streams = 0
        b_in = self.closed_bytes_in
        b_out = self.closed_bytes_out
        n_dials_over = self.closed_dials_over_limit
        for entry in self._registry:
            by_role[entry.identity.role] = by_role.get(entry.identity.role, 0) + 1
            st = entry.session.stats
            n_streams += st.open_streams
            b_in += st.bytes_in
            b_out += st.bytes_out
            n_dials_over += st.dials_over_limit
            if entry.session.rtt_s is not None:
                rtt.add_metric([entry.identity.session_key], entry.session.rtt_s)
        for role, n in by_role.items():
            sessions.add_metric([role], n)
        streams.add_metric([], n_streams)
        bytes_in.add_metric([], b_in)
        bytes_out.add_metric([], b_out)
        accepted.add_metric([], self.sessions_total)
        for bound in BOUNDS:
            bounds.add_metric([bound], self.bound_disconnects.get(bound, 0))
        for bound, n in self.bound_disconnects.items():
            if bound not in BOUNDS:
                bounds.add_metric([bound], n)
        dials_over.add_metric([], n_dials_over)
        yield from (sessions, streams, rtt, bytes_in, bytes_out, accepted, bounds, dials_over,
                    unheaded)


class ReplicaInfoCollector(Collector):
    """``rancher_server_replica_info{replica="<name>", store="sqlite|etcd"} 1``."""

    def __init__(self, replica: str, store: str) -> None:
        self._replica = replica
        self._store = store

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("rancher_server_replica_info",
                                 "This server replica: its name and its store's backend",
                                 labels=["replica", "store"])
        info.add_metric([self._replica, self._store], 1.0)
        yield info


class FrozenHeapCollector(Collector):
    """``python_gc_frozen_objects``: the objects moved out of the garbage collector's scans once
    the server was ready (``rancher_tunnel.process.freeze_heap``); 0 means every full
    collection walks the whole start-up heap again."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("python_gc_frozen_objects",
                                "Objects in the garbage collector's permanent generation",
                                value=gc.get_freeze_count())


# Upper bounds of ``python_gc_pause_seconds``: a young collection takes well under a
# millisecond; a full one over 10,000 agent sessions about a second, with the loop stopped.
GC_PAUSE_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
GC_GENERATIONS = 3


def gc_pause_histogram() -> Histogram:
    """``python_gc_pause_seconds{generation}`` (the event loop is stopped for each pass; a full
    pass over a large heap is the p99 of everything the server answers meanwhile)."""
    return Histogram("python_gc_pause_seconds",
                     "Time the cyclic garbage collector held the process, per pass",
                     ["generation"], buckets=GC_PAUSE_BUCKETS_S, registry=None)


class GcPauseTimer:
    """A ``gc.callbacks`` timer: how long each pass held the process, into ``hist`` by
    generation. One per process (:func:`install_gc_pause_timer`)."""

    def __init__(self, hist: Histogram) -> None:
        self._by_generation = [hist.labels(str(g)) for g in range(GC_GENERATIONS)]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = min(int(info["generation"]), GC_GENERATIONS - 1)
        self._by_generation[generation].observe(time.perf_counter() - self._started)


GC_PAUSES = gc_pause_histogram()  # process-wide: every registry of the process shows it
_GC_PAUSE_TIMER = GcPauseTimer(GC_PAUSES)


def install_gc_pause_timer() -> None:
    if _GC_PAUSE_TIMER not in gc.callbacks:
        gc.callbacks.append(_GC_PAUSE_TIMER)


def make_registry(sessions: SessionRegistry) -> tuple[CollectorRegistry, TunnelCollector]:
    """The server's registry: the tunnel's figures, and the process's own that an operator's
    Prometheus expects of any service (``process_*``: CPU, memory, file descriptors;
    ``python_gc_*``, with ``python_gc_pause_seconds``; ``python_info``)."""
    reg = CollectorRegistry()
    collector = TunnelCollector(sessions)
    reg.register(collector)
    for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        reg.register(standard)
    reg.register(FrozenHeapCollector())
    install_gc_pause_timer()
    reg.register(GC_PAUSES)
    return reg, collector
