"""One controller per cluster: started when the cluster exists, stopped when it is deleted. It
receives its agent's picture messages (through the session registry's report for the cluster),
keeps the picture in memory, acknowledges the agent's rounds, publishes every change on the feed
and holds the state users read:

- ``pending``: no agent has ever connected;
- ``active``: the agent is connected, its snapshot is applied and its API server is ready;
- ``unavailable``: otherwise, with the reason and since when;
- ``removing``: the cluster was deleted; the controller lets its sessions go, then stops.

Conditions in Rancher's style: ``Connected`` (the cluster agent's tunnel), ``Synced`` (the
picture is the agent's current snapshot), ``Ready`` (the API server's ``/readyz``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from rancher_server.clusters.feed import FeedHub
from rancher_server.clusters.laststate import LastState, LastStateWriter
from rancher_server.clusters.laststate import load as load_last_state
from rancher_server.clusters.picture import CHANGE_STATE, ClusterPicture
from rancher_server.clusters.reports import AgentReport
from rancher_server.clusters.resync import PictureReceiver
from rancher_server.store import Cluster, Store
from rancher_server.tunnel.agent_auth import AgentIdentity
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.logs import get_logger
from rancher_tunnel.messages import Message
from rancher_tunnel.session import Session

PENDING, ACTIVE, UNAVAILABLE, REMOVING = "pending", "active", "unavailable", "removing"
REMOVE_WAIT_S = 5.0  # how long a deleted cluster's controller waits for its sessions to end
# Store commits wake the manager: the first after a quiet spell at once, then at most one pass
# per this interval. 4,500 agents registering (a commit each) relisted 10,000 clusters 4,500
# times: the reconnect storm took minutes.
RECONCILE_MIN_INTERVAL_S = 0.25
OUTBOX_MAX = 64  # replies (acks, resync requests) waiting to be sent to the agent
TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

log = get_logger(component="cluster-controller")


@dataclass
class Condition:
    type: str
    status: str = UNKNOWN
    reason: str = ""
    message: str = ""
    last_transition: float = 0.0

    def set(self, status: str, reason: str = "", message: str = "") -> None:
        if status != self.status:
            self.last_transition = time.time()
        self.status, self.reason, self.message = status, reason, message

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "status": self.status, "reason": self.reason,
                "message": self.message, "lastTransitionTime": self.last_transition or None}


class PictureReport(AgentReport):
    """What the session registry holds for a cluster whose controller runs: the agent's
    messages go to the controller (over a bound, :class:`ReportLimitExceeded` cuts the agent
    off, as for plain reports)."""

    def __init__(self, controller: ClusterController) -> None:
        super().__init__()
        self._controller = controller

    def apply(self, msg: Message) -> None:
        self._controller.receive(msg)

    def to_json(self) -> dict[str, Any]:
        return self._controller.agent_report()


class ClusterController:
    def __init__(self, cluster_id: str, registered: bool, sessions: SessionRegistry,
                 hub: FeedHub, last: LastState | None = None,
                 writer: LastStateWriter | None = None) -> None:
        """``last``: what the store kept of this cluster's state (a restarted server); its
        ``since`` carries over while the state is the same; ``writer`` records changes."""
        self.cluster_id = cluster_id
        self.restored = last  # until the cluster is active again (or removed)
        self._writer = writer
        self._sessions = sessions
        self._hub = hub
        self.receiver = PictureReceiver()
        self.session: Session | None = None
        self.ever_connected = registered
        self.removing = False
        self.state, self.reason, self.since = PENDING, "", time.time()
        self.conditions = {t: Condition(t) for t in ("Connected", "Synced", "Ready")}
        # replies waiting for the agent, and the task sending them while there are any: a
        # resident task (and queue) per cluster cost memory at 10,000 clusters
        self._outbox: deque[tuple[Session, Message]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.replies_dropped = 0  # acknowledgements the agent did not read (it was cut off)
        self.log = log.bind(cluster=cluster_id)
        self._update_state()
        if last is not None and last.state == self.state:  # no transition: since carries over
            self.since = last.since

    @property
    def picture(self) -> ClusterPicture:
        return self.receiver.live

    # -- lifetime --------------------------------------------------------------------------
    def _spawn(self, coro: Any, what: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"cluster {self.cluster_id} {what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("controller task failed", task=task.get_name(),
                           exc_info=task.exception())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def remove(self) -> None:
        """The cluster was deleted: ``removing`` until its sessions have ended, then stop."""
        self.removing = True
        self._update_state()
        sessions = [e.session for e in self._sessions.sessions_of(self.cluster_id)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REMOVE_WAIT_S):
                for session in sessions:
                    await session.wait_closed()
        await self.stop()
        self._hub.publish(self.cluster_id, CHANGE_STATE, "", None)

    # -- the agent's session ---------------------------------------------------------------
    def attach(self, session: Session) -> None:
        """A cluster agent's session was registered: its messages come here from now on."""
        self.session = session
        self.ever_connected = True
        self.receiver.disconnected()
        self._sessions.reports[self.cluster_id] = PictureReport(self)
        session.add_close_callback(lambda: self._session_ended(session))
        self._update_state()

    def _session_ended(self, session: Session) -> None:
        if self.session is session:
            self.session = None
            self.receiver.disconnected()
            self._update_state()

    def receive(self, msg: Message) -> None:
        out = self.receiver.receive(msg)
        for ch in out.changes:
            self._hub.publish(self.cluster_id, ch.kind, ch.key, ch.data)
        if out.reply is not None and self.session is not None:
            if len(self._outbox) >= OUTBOX_MAX:  # the agent does not read: it is cut off
                self.replies_dropped += 1
                self._spawn(self.session.close(1008, "picture replies not read"), "close")
            else:
                self._outbox.append((self.session, out.reply))
                if self._sender is None:
                    self._sender = self._spawn(self._send_replies(), "replies")
        if out.synced_now or out.changes or out.reply is not None:
            self._update_state()

    async def _send_replies(self) -> None:
        try:
            while self._outbox:
                session, msg = self._outbox.popleft()
                if session.closed:
                    continue
                with contextlib.suppress(SessionClosed):
                    await session.send_message(msg)
        finally:
            self._sender = None

    # -- state -----------------------------------------------------------------------------
    def refresh(self) -> None:
        self._update_state()

    def _update_state(self) -> None:
        connected = self.session is not None and not self.session.closed
        synced = connected and self.receiver.synced
        health = self.picture.health
        c = self.conditions
        if connected:
            c["Connected"].set(TRUE)
        elif self.ever_connected:
            c["Connected"].set(FALSE, "Disconnected", "the cluster agent is not connected")
        else:
            c["Connected"].set(FALSE, "Pending", "no cluster agent has connected yet")
        c["Synced"].set(TRUE if synced else FALSE, "" if synced else "Waiting",
                        "" if synced else "waiting for the agent's picture")
        if not connected:
            c["Ready"].set(UNKNOWN, "Disconnected", "no agent reports the API server's health")
        elif health is None:
            c["Ready"].set(UNKNOWN, "Waiting", "no health report yet")
        elif health.healthy:
            c["Ready"].set(TRUE)
        else:
            checks = ", ".join(health.failing_checks)
            c["Ready"].set(FALSE, "APIServerNotReady",
                           f"readyz failing: {checks}" if checks else health.detail)
        if self.removing:
            state, reason = REMOVING, "the cluster was deleted"
        elif not self.ever_connected:
            state, reason = PENDING, c["Connected"].message
        elif not connected:
            state, reason = UNAVAILABLE, c["Connected"].message
        elif not synced:
            state, reason = UNAVAILABLE, c["Synced"].message
        elif c["Ready"].status == FALSE:
            state, reason = UNAVAILABLE, f"API server not ready: {c['Ready'].message}"
        else:
            state, reason = ACTIVE, ""
        if (state, reason) != (self.state, self.reason):
            if state != self.state:
                restored = self.restored
                same = restored is not None and restored.state == state
                self.since = restored.since if same and restored is not None else time.time()
                if state in (ACTIVE, REMOVING):
                    self.restored = None
            self.state, self.reason = state, reason
            self._record()
            self._hub.publish(self.cluster_id, CHANGE_STATE, "", self.status_json())

    def _record(self) -> None:
        if self._writer is None or self.removing:
            return
        s = self.picture.stats
        self._writer.record(self.cluster_id, LastState(
            self.state, self.reason, self.since,
            int(s.get("nodes", len(self.picture.nodes))), int(s.get("nodes_ready", 0)),
            time.time()))

    # -- views -----------------------------------------------------------------------------
    def status_json(self) -> dict[str, Any]:
        s = self.picture.stats
        out: dict[str, Any] = {
            "state": self.state, "transitioningMessage": self.reason, "stateSince": self.since,
            "conditions": [c.to_json() for c in self.conditions.values()],
            "nodeCount": int(s.get("nodes", len(self.picture.nodes))),
            "nodesReady": int(s.get("nodes_ready", 0)),
            "capacity": {"cpu": s.get("cpu_capacity", 0.0),
                         "memory": s.get("memory_capacity_bytes", 0.0),
                         "pods": s.get("pods_capacity", 0.0)},
            "allocatable": {"cpu": s.get("cpu_allocatable", 0.0),
                            "memory": s.get("memory_allocatable_bytes", 0.0),
                            "pods": s.get("pods_allocatable", 0.0)},
            "requested": {"cpu": s.get("cpu_requested", 0.0),
                          "memory": s.get("memory_requested_bytes", 0.0),
                          "pods": s.get("pods", 0.0)},
            "limits": {"cpu": s.get("cpu_limited", 0.0),
                       "memory": s.get("memory_limited_bytes", 0.0)},
            "used": ({"cpu": s["cpu_used"], "memory": s.get("memory_used_bytes", 0.0)}
                     if "cpu_used" in s else None),
        }
        if self.restored is not None and not self.receiver.synced:
            out["lastKnown"] = self.restored.to_json()  # before the server restarted
        h = self.picture.health
        if h is not None:
            out["health"] = {"healthy": h.healthy, "detail": h.detail,
                             "failingChecks": h.failing_checks, "agentVersion": h.agent_version,
                             "tunnelRttMs": h.rtt_ms, "heartbeatAt": h.heartbeat_at or None,
                             "receivedAt": self.picture.health_at}
        return out

    def agent_report(self) -> dict[str, Any]:
        """The earlier ``agentReport`` shape (health, stats, nodes)."""
        h = self.picture.health
        return {
            "healthy": None if h is None else h.healthy, "detail": "" if h is None else h.detail,
            "checkedAt": self.picture.health_at, "stats": self.picture.stats,
            "nodes": [{"name": n.name, "kubeletVersion": n.kubelet_version,
                       "capacity": n.capacity} for n in self.picture.nodes.values()],
        }


class ControllerManager:
    """Keeps one controller per cluster of the store (follows the store's change feed)."""

    def __init__(self, store: Store, sessions: SessionRegistry) -> None:
        self._store = store
        self._sessions = sessions
        self.hub = FeedHub()
        self.last_states = LastStateWriter(store)
        self.controllers: dict[str, ClusterController] = {}
        self._removals: set[asyncio.Task[None]] = set()

    def get(self, cluster_id: str) -> ClusterController | None:
        return self.controllers.get(cluster_id)

    def observe(self, cluster: Cluster) -> ClusterController:
        """The cluster's controller (started now if the store's change has not reached the
        manager yet: what the API reads follows its writes), told what the store knows (an agent
        registered while another server ran, or before this one started: not pending)."""
        ctl = self.controllers.get(cluster.id)
        if ctl is None:
            ctl = self.controllers[cluster.id] = ClusterController(
                cluster.id, cluster.registered_at is not None, self._sessions, self.hub,
                load_last_state(self._store, cluster.id), self.last_states)
            for entry in self._sessions.sessions_of(cluster.id):
                if entry.identity.session_key == cluster.id and not entry.session.closed:
                    ctl.attach(entry.session)
        elif cluster.registered_at is not None and not ctl.ever_connected:
            ctl.ever_connected = True
            ctl.refresh()
        return ctl

    def reconcile(self) -> None:
        clusters = {c.id: c for c in self._store.list_clusters()}
        for c in clusters.values():
            self.observe(c)
        for cid in [cid for cid in self.controllers if cid not in clusters]:
            ctl = self.controllers.pop(cid)
            self.last_states.forget(cid)
            task = asyncio.create_task(ctl.remove(), name=f"cluster {cid} removal")
            self._removals.add(task)
            task.add_done_callback(self._removals.discard)

    def _on_session(self, identity: AgentIdentity, session: Session) -> None:
        if identity.role != "cluster":
            return
        if identity.cluster.id not in self.controllers:
            self.reconcile()
        ctl = self.controllers.get(identity.cluster.id)
        if ctl is not None:
            ctl.attach(session)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: a controller per cluster, following creations and deletions."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def on_store_change() -> None:
            loop.call_soon_threadsafe(wake.set)

        self._store.add_listener(on_store_change)
        self._sessions.on_added.append(self._on_session)
        writer = asyncio.create_task(self.last_states.run(), name="cluster-last-states")
        try:
            while not stop.is_set():
                wake.clear()
                passed = loop.time()
                self.reconcile()
                waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
                rest = passed + RECONCILE_MIN_INTERVAL_S - loop.time()
                if rest > 0 and not stop.is_set():  # more commits in the meantime: one pass
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(rest):
                            await stop.wait()
        finally:
            self._store.remove_listener(on_store_change)
            self._sessions.on_added.remove(self._on_session)
            for ctl in self.controllers.values():
                await ctl.stop()
            for task in list(self._removals):
                task.cancel()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
