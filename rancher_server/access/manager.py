"""Runs one :class:`ClusterReconciler` per connected cluster: started when the cluster's agent
reports its API server and credential, restarted when those change, stopped when the cluster is
gone. Store changes wake every reconciler (a listener for our own writes, a revision poll for
other processes')."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rancher_server.access.reconciler import ClusterReconciler
from rancher_server.clusters.kube import Kube, KubeError
from rancher_server.store import Store
from rancher_server.tunnel.registry import ClusterUnavailable, SessionRegistry
from rancher_tunnel.logs import get_logger

if TYPE_CHECKING:
    from rancher_server.proxy.upstream import UpstreamPool

SUPERVISE_INTERVAL_S = 0.5
SUPERVISE_SWEEP_S = 10.0  # every connected cluster is looked at again this often (safety net)
SUPERVISE_BATCH = 1_000  # clusters looked at per round: bounds how long a round holds the loop
OWNERSHIP_WAIT_S = 10.0  # a request waits this long for its cluster to get an owner (replicas)
OWNERSHIP_POLL_S = 0.05
STOP_TIMEOUT_S = 5.0

log = get_logger(component="access")


@dataclass
class _Running:
    reconciler: ClusterReconciler
    task: asyncio.Task[None]
    key: tuple[str, str]


class AccessManager:
    def __init__(self, store: Store, sessions: SessionRegistry, pool: UpstreamPool,
                 owns: Callable[[str], bool] = lambda _: True, replica: str = "",
                 owns_version: Callable[[], object] = lambda: None) -> None:
        """``owns(cluster)``: whether this replica drives the cluster (replicas on etcd: one
        does; its reconciler's writes are fenced by it, so none land after ownership moved);
        ``owns_version()`` changes whenever any answer of ``owns`` may have changed.
        ``replica``: its name, in the User-Agent of every downstream call."""
        self._store = store
        self._replica = replica
        self._owns = owns
        self._owns_version = owns_version
        self._sessions = sessions
        self._pool = pool
        self._running: dict[str, _Running] = {}
        self._revision = -1  # the store's, as of the last round
        self._ids: set[str] = set()  # the store's cluster ids, as of _revision
        # Clusters to look at in the next rounds (an ordered set): marked by their sessions
        # coming and going, their reconciler stopping, the store's clusters or this replica's
        # ownership changing, and a periodic sweep; looking at all 10,000 connected clusters each
        # round held the event loop for ~100 ms.
        self._dirty: dict[str, None] = {}
        self._owns_seen: object = object()
        self._next_sweep = 0.0
        sessions.on_added.append(lambda identity, _session: self._mark(identity.cluster.id))
        sessions.on_removed.append(lambda identity: self._mark(identity.cluster.id))

    # What the proxy and the API use --------------------------------------------------------

    def reconciler(self, cluster_id: str) -> ClusterReconciler:
        """The cluster's reconciler, started now if it was not running.
        Raises ClusterUnavailable when the cluster has no agent or no credential."""
        if not self._owns(cluster_id):
            raise ClusterUnavailable(
                f"cluster {cluster_id}: this replica does not drive it (another replica does, "
                "or ownership is moving); retry")
        self._start_or_refresh(cluster_id)
        running = self._running.get(cluster_id)
        if running is None:
            raise ClusterUnavailable(
                f"cluster {cluster_id}: the agent reported no credential to manage access"
            )
        return running.reconciler

    async def owned_reconciler(self, cluster_id: str) -> ClusterReconciler:
        """Like :meth:`reconciler`, but waits (up to :data:`OWNERSHIP_WAIT_S`) while this replica
        is taking the cluster over: an agent that just connected here, a previous owner
        draining, a lease being renewed."""
        deadline = asyncio.get_running_loop().time() + OWNERSHIP_WAIT_S
        # ownership is decided by another task from etcd's answers: a short poll, not an event
        while not self._owns(cluster_id) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(OWNERSHIP_POLL_S)
        return self.reconciler(cluster_id)

    def status(self, cluster_id: str) -> dict[str, Any] | None:
        running = self._running.get(cluster_id)
        return None if running is None else running.reconciler.status()

    def reconcilers(self) -> list[tuple[str, ClusterReconciler]]:
        return [(cid, r.reconciler) for cid, r in sorted(self._running.items())]

    def wake_all(self) -> None:
        for running in self._running.values():
            running.reconciler.wake()

    # Supervision ---------------------------------------------------------------------------

    def _start_or_refresh(self, cluster_id: str) -> None:
        up = self._pool.get(cluster_id)  # ClusterUnavailable when no agent is connected
        running = self._running.get(cluster_id)
        if running is not None and running.key == up.key and not running.task.done():
            if up.admin_token:
                running.reconciler.kube.set_token(up.admin_token)
            return
        if running is not None:
            self._stop(cluster_id)
        if not up.admin_token:
            return
        kube = Kube(up, self._replica)
        kube.fence = lambda: self._fence(cluster_id)
        reconciler = ClusterReconciler(self._store, kube)
        task = asyncio.get_running_loop().create_task(
            self._guarded(reconciler), name=f"access-{cluster_id}"
        )
        task.add_done_callback(lambda _: self._mark(cluster_id))  # restarted next round
        self._running[cluster_id] = _Running(reconciler, task, up.key)
        log.info("reconciler started", cluster=cluster_id)

    def _fence(self, cluster_id: str) -> None:
        if not self._owns(cluster_id):
            raise KubeError(423, "NotOwner", "this replica no longer drives the cluster; the "
                            "write was not sent", f"cluster {cluster_id}")

    async def _guarded(self, reconciler: ClusterReconciler) -> None:
        try:
            await reconciler.run()
        except asyncio.CancelledError:
            raise
        except BaseException:  # the supervisor restarts it on its next round
            log.exception("reconciler stopped unexpectedly", cluster=reconciler.cluster_id)
        finally:
            await reconciler.kube.close()

    def _stop(self, cluster_id: str) -> asyncio.Task[None] | None:
        running = self._running.pop(cluster_id, None)
        if running is None:
            return None
        running.task.cancel()
        log.info("reconciler stopped", cluster=cluster_id)
        return running.task

    def _mark(self, cluster_id: str) -> None:
        self._dirty[cluster_id] = None

    def supervise(self) -> None:
        """One round: start, refresh or stop the reconcilers of the clusters marked since the
        last round (at most :data:`SUPERVISE_BATCH`; the rest wait for the next rounds)."""
        now = time.monotonic()
        # read first: a change during the round is seen by the next one
        revision = self._store.revision
        store_changed = revision != self._revision
        if store_changed:  # listing 10,000 clusters every round held the event loop for 150 ms
            ids = {c.id for c in self._store.list_clusters()}
            self._dirty.update(dict.fromkeys(ids ^ self._ids))  # created or deleted
            self._ids = ids
        owns_version = self._owns_version()
        if owns_version != self._owns_seen or now >= self._next_sweep:
            self._owns_seen = owns_version
            self._next_sweep = now + SUPERVISE_SWEEP_S
            self._dirty.update(dict.fromkeys(self._sessions.cluster_ids()))
            self._dirty.update(dict.fromkeys(self._running))
        for cluster_id in list(itertools.islice(self._dirty, SUPERVISE_BATCH)):
            del self._dirty[cluster_id]
            if cluster_id not in self._ids or not self._sessions.is_connected(cluster_id) \
                    or not self._owns(cluster_id):
                self._stop(cluster_id)
                continue
            try:
                self._start_or_refresh(cluster_id)
            except ClusterUnavailable:
                continue
        if store_changed:  # another process (the CLI) may have written to the store
            self._revision = revision
            self.wake_all()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()

        def on_commit() -> None:
            loop.call_soon_threadsafe(self.wake_all)

        self._store.add_listener(on_commit)
        try:
            while not stop.is_set():
                try:
                    self.supervise()
                except Exception:  # never let one bad round stop supervision
                    log.exception("access supervision round failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SUPERVISE_INTERVAL_S):
                        await stop.wait()
        finally:
            self._store.remove_listener(on_commit)
            tasks = [t for cid in list(self._running) if (t := self._stop(cid)) is not None]
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)


class AccessCollector(Collector):
    """Prometheus view of the reconcilers, read at scrape time."""

    def __init__(self, manager: AccessManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        passes = CounterMetricFamily("rancher_rbac_reconcile_passes",
                                     "Reconcile passes per cluster", labels=["cluster"])
        writes = CounterMetricFamily("rancher_rbac_writes",
                                     "Downstream writes (create, replace, delete)",
                                     labels=["cluster"])
        failures = CounterMetricFamily("rancher_rbac_object_failures",
                                       "Failed downstream writes", labels=["cluster"])
        failing = GaugeMetricFamily("rancher_rbac_failing_objects",
                                    "Objects that are failing now, per kind",
                                    labels=["cluster", "kind"])
        objects = GaugeMetricFamily("rancher_rbac_desired_objects",
                                    "Objects the server keeps in the cluster", labels=["cluster"])
        for cid, r in self._manager.reconcilers():
            passes.add_metric([cid], r.counters.passes)
            writes.add_metric([cid], r.counters.writes)
            failures.add_metric([cid], r.counters.failures)
            objects.add_metric([cid], r.desired_count)
            by_kind: dict[str, int] = {}
            for kind, _, _ in r.failures:
                by_kind[kind] = by_kind.get(kind, 0) + 1
            for kind, n in sorted(by_kind.items()):
                failing.add_metric([cid, kind], n)
        yield from (passes, writes, failures, failing, objects)
