"""Prometheus view of a replica's HA machinery. Every figure is this replica's own (sum them over
replicas), except ``rancher_ha_directory_sessions``, which is the deployment's directory as this
replica sees it (take max() over replicas, not sum())."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from rancher_server.ha.runtime import HA


class HACollector(Collector):
    def __init__(self, get: Callable[[], HA | None]) -> None:
        self._get = get

    def collect(self) -> Iterator[Metric]:
        ha = self._get()
        if ha is None:
            return
        forwarded = CounterMetricFamily("rancher_ha_forwarded_requests",
                                        "Requests this replica forwarded to the tunnel's holder")
        forwarded.add_metric([], ha.forwarder.forwarded)
        failed = CounterMetricFamily("rancher_ha_forward_failures",
                                     "Forwarded requests whose holder could not be reached")
        failed.add_metric([], ha.forwarder.failed)
        tunnels = GaugeMetricFamily("rancher_ha_peer_tunnels_open",
                                    "Tunnels this replica holds open to peer replicas")
        tunnels.add_metric([], ha.pool.open_count())
        opened = CounterMetricFamily("rancher_ha_peer_tunnels_opened",
                                     "Tunnels this replica opened to peer replicas")
        opened.add_metric([], ha.pool.opened)
        owned = GaugeMetricFamily("rancher_ha_owned_clusters", "Clusters this replica drives")
        owned.add_metric([], len(ha.ownership.owned()))
        changes = CounterMetricFamily("rancher_ha_ownership_changes",
                                      "Clusters this replica took or let go")
        changes.add_metric([], ha.ownership.changes)
        lease = GaugeMetricFamily("rancher_ha_lease_valid",
                                  "1 while this replica's etcd lease is confirmed")
        lease.add_metric([], 1.0 if ha.lease.valid else 0.0)
        directory = GaugeMetricFamily("rancher_ha_directory_sessions",
                                      "Agent sessions per replica in the shared directory "
                                      "(deployment-wide: take max over replicas)",
                                      labels=["holder"])
        for replica, n in sorted(ha.directory.counts().items()):
            directory.add_metric([replica], n)
        yield from (forwarded, failed, tunnels, opened, owned, changes, lease, directory)
