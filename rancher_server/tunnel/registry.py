"""Live agent sessions, keyed by cluster id (cluster agents) or ``<cluster>:<node>`` (node agents).

A reconnecting agent replaces its stale session: the old one is closed, so nothing holds a stream
table for a connection that the agent has already forgotten. A cluster's agent report is dropped
when its cluster agent's session ends (a new session reports afresh)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rancher_server.clusters.reports import AgentReport
from rancher_server.constants import SESSION_REPLACE_CLOSE_TIMEOUT_S
from rancher_server.tunnel.agent_auth import AgentIdentity
from rancher_tunnel.logs import get_logger
from rancher_tunnel.malloc import trim
from rancher_tunnel.messages import HostReport
from rancher_tunnel.session import Session

log = get_logger(component="registry")

# Thousands of agents connecting at once (a server restart) leave the heap full of the TLS
# handshakes' and upgrades' freed buffers; long-lived allocations carved from those pages later
# (each session's TLS read buffer is 256 KiB, mostly never written) keep them resident. Giving
# them back while the sessions come: scale_bench at 5,000 sessions, RSS 948 -> 755 MiB.
TRIM_AFTER_CHURN = 64  # sessions added or removed since the last trim
TRIM_DELAY_S = 1.0  # a trim (a few ms at 10,000 sessions) at most this often


class ClusterUnavailable(Exception):
    """No agent of this cluster is connected."""


@dataclass
class Entry:
    identity: AgentIdentity
    session: Session
    connected_at: float = field(default_factory=time.time)
    host: HostReport | None = None  # a node agent's last host report
    host_at: float | None = None  # when the server received it


class SessionRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_cluster: dict[str, set[str]] = {}
        self.reports: dict[str, AgentReport] = {}  # cluster id -> what its agent last reported
        # called when a session is registered, before it processes anything (cluster controllers)
        self.on_added: list[Callable[[AgentIdentity, Session], None]] = []
        # called when a live session is removed (not when a newer one already replaced it)
        self.on_removed: list[Callable[[AgentIdentity], None]] = []
        self._churn = 0
        self._trim_pending = False

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    async def add(self, identity: AgentIdentity, session: Session) -> None:
        key = identity.session_key
        old = self._entries.get(key)
        self._entries[key] = Entry(identity, session)
        self._by_cluster.setdefault(identity.cluster.id, set()).add(key)
        self._churned()
        for hook in list(self.on_added):
            hook(identity, session)
        if old is not None and old.session is not session:
            log.info("session replaced", session=key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    old.session.close(1001, "replaced by a new session"),
                    SESSION_REPLACE_CLOSE_TIMEOUT_S,
                )

    def remove(self, identity: AgentIdentity, session: Session) -> None:
        key = identity.session_key
        entry = self._entries.get(key)
        if entry is None or entry.session is not session:
            return  # already replaced by a newer session
        del self._entries[key]
        self._churned()
        for hook in list(self.on_removed):
            hook(identity)
        if key == identity.cluster.id:  # the cluster agent's own session
            self.reports.pop(identity.cluster.id, None)
        keys = self._by_cluster.get(identity.cluster.id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_cluster[identity.cluster.id]

    def _churned(self) -> None:
        self._churn += 1
        if self._churn >= TRIM_AFTER_CHURN and not self._trim_pending:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # outside the server's loop (tests, tools): nothing to time
                return
            self._trim_pending = True
            loop.call_later(TRIM_DELAY_S, self._trim)

    def _trim(self) -> None:
        self._trim_pending = False
        self._churn = 0
        trim()

    def for_dial(self, cluster_id: str) -> Entry | None:
        """The cluster agent's session, or a node agent's when no cluster agent is connected."""
        entry = self._entries.get(cluster_id)
        if entry is not None and not entry.session.closed:
            return entry
        for key in sorted(self._by_cluster.get(cluster_id, ())):
            node_entry = self._entries[key]
            if not node_entry.session.closed:
                return node_entry
        return None

    def dial_entry(self, cluster_id: str) -> Entry:
        """Like :meth:`for_dial`, but raises :class:`ClusterUnavailable` when none is connected."""
        entry = self.for_dial(cluster_id)
        if entry is None:
            raise ClusterUnavailable(f"cluster {cluster_id} has no connected agent")
        return entry

    def report_for(self, cluster_id: str) -> AgentReport:
        """The report a cluster agent's messages go into (created on first use)."""
        report = self.reports.get(cluster_id)
        if report is None:
            report = self.reports[cluster_id] = AgentReport()
        return report

    def set_host(self, identity: AgentIdentity, session: Session, report: HostReport,
                 at: float) -> None:
        """A node agent's latest host report (kept while its session is the live one)."""
        entry = self._entries.get(identity.session_key)
        if entry is not None and entry.session is session:
            entry.host, entry.host_at = report, at

    def hosts_of(self, cluster_id: str) -> dict[str, tuple[HostReport, float]]:
        """Node name -> the last host report of its connected node agent, and when."""
        out: dict[str, tuple[HostReport, float]] = {}
        for entry in self.sessions_of(cluster_id):
            if entry.identity.role == "node" and entry.host is not None \
                    and entry.host_at is not None:
                out[entry.identity.node_name] = (entry.host, entry.host_at)
        return out

    def is_connected(self, cluster_id: str) -> bool:
        return self.for_dial(cluster_id) is not None

    def cluster_ids(self) -> list[str]:
        """The clusters with at least one registered session (cluster or node agent)."""
        return list(self._by_cluster)

    def sessions_of(self, cluster_id: str) -> list[Entry]:
        return [self._entries[k] for k in sorted(self._by_cluster.get(cluster_id, ()))]

    async def close_all(self, code: int, reason: str) -> None:
        entries = list(self._entries.values())
        await asyncio.gather(
            *(e.session.close(code, reason) for e in entries), return_exceptions=True
        )
