"""Which replica drives each cluster: its controller's writes to the store and its RBAC
reconciler's writes downstream happen on the owner only.

The owner should be the replica that holds the cluster agent's tunnel (the reconciler needs
it, and the controller is fed by it): that replica takes a free cluster at once; a cluster whose
agent is connected nowhere is taken by any replica after :data:`ORPHAN_GRACE_S` (so that its
state is still kept, say "unavailable since"); an owner whose cluster's agent is now on another
replica lets it go. Letting go drains first: :meth:`Ownership.owns` answers False at once (the
reconciler stops, every downstream write is refused by the fence), and the etcd entry goes
:data:`DRAIN_S` later, so the next owner's first write comes after the last one of this replica.
An owner that cannot renew its lease stops owning anything before etcd could give its clusters
to another (:data:`rancher_server.ha.lease.SELF_FENCE_AFTER_S` < the lease's TTL)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

from rancher_server.ha.directory import Directory
from rancher_server.ha.lease import ReplicaLease
from rancher_server.store import StoreError
from rancher_tunnel.logs import get_logger

TICK_S = 0.5
ROUND_MIN_GAP_S = 0.1  # directory changes wake a round, at most this often (a reconnect storm)
ORPHAN_GRACE_S = 3.0  # a cluster with no agent anywhere and no owner waits this long for one
DRAIN_S = 1.0  # between "stop writing" and "let another replica take it"

log = get_logger(component="ha-ownership")


class NotOwner(Exception):
    """A write was attempted for a cluster this replica does not own (now)."""


class Ownership:
    def __init__(self, directory: Directory | None, lease: ReplicaLease | None,
                 cluster_ids: Callable[[], Iterable[str]]) -> None:
        """``directory`` None: one replica (SQLite), which owns every cluster."""
        self._dir = directory
        self._lease = lease
        self._cluster_ids = cluster_ids
        self._owned: set[str] = set()
        # clusters this process took under the lease it holds now: an owner entry with our
        # name is ours only if it is in here (an entry of an earlier process of the same
        # name, or one our mirror has not yet seen deleted, is not)
        self._taken: dict[str, int] = {}
        self._draining: dict[str, float] = {}  # cluster -> when its entry may go
        self._orphan_since: dict[str, float] = {}
        self._wake = asyncio.Event()
        self.changes = 0  # ownership gained or lost (tests, metrics)
        self._version = 0  # grows whenever what owns() answers may have changed

    @property
    def version(self) -> tuple[int, bool]:
        """Changes whenever any answer of :meth:`owns` may have (the supervisors look at every
        cluster again only then)."""
        return self._version, self._lease is not None and self._lease.valid

    def _own(self, cluster_id: str) -> None:
        if cluster_id not in self._owned:
            self._owned.add(cluster_id)
            self._version += 1

    def _disown(self, cluster_id: str) -> None:
        if cluster_id in self._owned:
            self._owned.discard(cluster_id)
            self._version += 1

    @property
    def replicated(self) -> bool:
        return self._dir is not None

    def owns(self, cluster_id: str) -> bool:
        if self._dir is None:
            return True
        assert self._lease is not None
        return (cluster_id in self._owned and cluster_id not in self._draining
                and self._lease.valid)

    def owned(self) -> list[str]:
        return sorted(c for c in self._owned if self.owns(c))

    def fence(self, cluster_id: str) -> None:
        """Raises :class:`NotOwner` unless this replica may write for the cluster now."""
        if not self.owns(cluster_id):
            raise NotOwner(f"this replica does not own cluster {cluster_id} (any more)")

    def wake(self) -> None:
        self._wake.set()

    async def _round(self) -> None:
        d, lease = self._dir, self._lease
        assert d is not None and lease is not None
        now = time.monotonic()
        if not lease.valid:
            if self._owned:
                log.warning("lease not confirmed; owning nothing until it is",
                            clusters=len(self._owned))
                self.changes += len(self._owned)
            if self._owned or self._draining:
                self._version += 1
            self._owned.clear()
            self._draining.clear()
            return
        for cid, lease_id in list(self._taken.items()):
            if lease_id != lease.lease_id:  # taken under a lease etcd has since dropped
                del self._taken[cid]
        wanted = set(self._cluster_ids())
        for cid in wanted:
            owner, holder = d.owner_of(cid), d.cluster_agent_holder(cid)
            if owner == d.name and self._taken.get(cid) == lease.lease_id:
                self._own(cid)
                if holder is not None and holder != d.name and cid not in self._draining:
                    log.info("cluster's agent is on another replica; handing it over",
                             cluster=cid, to=holder)
                    self._draining[cid] = now + DRAIN_S
                    self._version += 1
                    self.changes += 1
                continue
            self._disown(cid)
            if owner is not None:
                self._orphan_since.pop(cid, None)
                continue
            if holder is None:
                since = self._orphan_since.setdefault(cid, now)
                if now - since < ORPHAN_GRACE_S:
                    continue
            elif holder != d.name:
                continue  # its holder takes it
            lease_id = lease.lease_id
            if await asyncio.to_thread(d.try_own, lease_id, cid):
                self._taken[cid] = lease_id
                self._own(cid)
                self._orphan_since.pop(cid, None)
                self.changes += 1
                log.info("cluster owned", cluster=cid)
        for cid, at in list(self._draining.items()):
            if now >= at or cid not in wanted:
                self._disown(cid)
                self._taken.pop(cid, None)
                await asyncio.to_thread(d.release, cid)
                del self._draining[cid]
                self._version += 1
        for cid in [c for c in self._owned if c not in wanted]:
            self._disown(cid)
            self._taken.pop(cid, None)
            await asyncio.to_thread(d.release, cid)  # a deleted cluster

    async def run(self, stop: asyncio.Event) -> None:
        if self._dir is None:
            return
        while not stop.is_set():
            self._wake.clear()
            started = time.monotonic()
            try:
                await self._round()
            except StoreError as e:
                log.warning("ownership round failed", error=str(e))
            except Exception:
                log.exception("ownership round failed")
            rest = ROUND_MIN_GAP_S - (time.monotonic() - started)
            if rest > 0:
                await asyncio.sleep(rest)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)  # stop is seen within a tick
