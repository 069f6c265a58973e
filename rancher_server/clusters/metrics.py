"""Prometheus metrics of every cluster's picture, read from the controllers at scrape time (the
picture's path pays a few integer increments): state, nodes and nodes ready, capacity,
allocatable and requested, events per second, and the picture messages received, dropped
(stale generation, unread replies, events over the bound), coalesced by the agent, and the
resynchronisations asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rancher_server.clusters.controller import (
    ACTIVE,
    PENDING,
    REMOVING,
    UNAVAILABLE,
    ControllerManager,
)

STATES = (PENDING, ACTIVE, UNAVAILABLE, REMOVING)
# (resource label, stats key) of the capacity, allocatable and requested gauges
CAPACITY = (("cpu", "cpu_capacity"), ("memory", "memory_capacity_bytes"),
            ("pods", "pods_capacity"))
ALLOCATABLE = (("cpu", "cpu_allocatable"), ("memory", "memory_allocatable_bytes"),
               ("pods", "pods_allocatable"))
REQUESTED = (("cpu", "cpu_requested"), ("memory", "memory_requested_bytes"), ("pods", "pods"))


class PictureCollector(Collector):
    """``manager`` gives the running controllers (None while the server starts or stops)."""

    def __init__(self, manager: Callable[[], ControllerManager | None]) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        cl = ["cluster"]
        state = GaugeMetricFamily("rancher_cluster_state", "1 for the cluster's current state",
                                  labels=[*cl, "state"])
        nodes = GaugeMetricFamily("rancher_cluster_nodes", "Nodes in the cluster", labels=cl)
        ready = GaugeMetricFamily("rancher_cluster_nodes_ready", "Nodes whose Ready is True",
                                  labels=cl)
        figures = {
            "capacity": (CAPACITY, GaugeMetricFamily(
                "rancher_cluster_capacity", "Capacity of the cluster's nodes (cpu in cores, "
                "memory in bytes, pods)", labels=[*cl, "resource"])),
            "allocatable": (ALLOCATABLE, GaugeMetricFamily(
                "rancher_cluster_allocatable", "Allocatable of the cluster's nodes",
                labels=[*cl, "resource"])),
            "requested": (REQUESTED, GaugeMetricFamily(
                "rancher_cluster_requested", "Requested by the pods' specs (pods: running pods)",
                labels=[*cl, "resource"])),
        }
        events = CounterMetricFamily("rancher_cluster_events_received",
                                     "Event messages received (new events and repeats)",
                                     labels=cl)
        events_rate = GaugeMetricFamily("rancher_cluster_events_per_second",
                                        "Event messages per second over the last 10 s",
                                        labels=cl)
        messages = CounterMetricFamily("rancher_cluster_picture_messages",
                                       "Picture messages applied", labels=cl)
        dropped = CounterMetricFamily(
            "rancher_cluster_picture_dropped",
            "Picture messages dropped: stale (another generation's), replies (acknowledgements "
            "the agent did not read), events_evicted (over the kept events' bound)",
            labels=[*cl, "reason"])
        coalesced = CounterMetricFamily(
            "rancher_cluster_picture_coalesced",
            "Changes the agent merged into a later message of the same object", labels=cl)
        resyncs = CounterMetricFamily("rancher_cluster_picture_resyncs",
                                      "New generations asked of the agent (incomplete rounds)",
                                      labels=cl)
        manager = self._manager()
        for cid, ctl in sorted((manager.controllers if manager else {}).items()):
            for s in STATES:
                state.add_metric([cid, s], int(ctl.state == s))
            pic, rx = ctl.picture, ctl.receiver
            stats = pic.stats
            nodes.add_metric([cid], stats.get("nodes", float(len(pic.nodes))))
            ready.add_metric([cid], stats.get("nodes_ready", 0.0))
            for pairs, family in figures.values():
                for resource, key in pairs:
                    family.add_metric([cid, resource], stats.get(key, 0.0))
            events.add_metric([cid], rx.events_total)
            events_rate.add_metric([cid], rx.events_rate.per_s())
            messages.add_metric([cid], rx.messages_total)
            dropped.add_metric([cid, "stale"], rx.stale_dropped)
            dropped.add_metric([cid, "replies"], ctl.replies_dropped)
            dropped.add_metric([cid, "events_evicted"], pic.events_evicted)
            coalesced.add_metric([cid], rx.agent_coalesced)
            resyncs.add_metric([cid], rx.resyncs_requested)
        yield from (state, nodes, ready, *(f for _, f in figures.values()), events, events_rate,
                    messages, dropped, coalesced, resyncs)
