"""Per-peer bounds above the tunnel: a cluster agent's reports (``clusters.reports``), and the
accounting of agents cut off for exceeding a bound (the tunnel's own bounds are enforced by the
session: queued output, streams; see ``rancher_tunnel/constants.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from rancher_server.clusters.reports import ReportLimitExceeded, estimate_bytes
from rancher_server.constants import MAX_NODE_REPORT_BYTES, MAX_STATS_KEYS
from rancher_server.metrics import TunnelCollector
from rancher_server.tunnel.agent_auth import AgentIdentity
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.logs import get_logger
from rancher_tunnel.messages import HostReport, Message
from rancher_tunnel.session import MessageHandler, Session

log = get_logger(component="tunnel-bounds")
BOUND_REPORTS = "reports"


def report_handler(
    sessions: SessionRegistry, cluster_id: str, session: Callable[[], Session | None]
) -> MessageHandler:
    """Messages of a cluster agent go into its cluster's report; a report over its bound cuts
    the agent off (``session()`` is the agent's session once it exists)."""

    async def record(msg: Message) -> None:
        try:
            sessions.report_for(cluster_id).apply(msg)
        except ReportLimitExceeded as e:
            current = session()
            if current is not None:
                await current.close_for_bound(BOUND_REPORTS, str(e))

    return record


def host_handler(
    sessions: SessionRegistry, identity: AgentIdentity, session: Callable[[], Session | None]
) -> MessageHandler:
    """A node agent's host reports (about its own node only; others are ignored) go into the
    registry while its session lives. One over ``MAX_NODE_REPORT_BYTES`` or with more than
    ``MAX_STATS_KEYS`` figures cuts the node agent off."""

    async def record(msg: Message) -> None:
        if not isinstance(msg, HostReport) or msg.node != identity.node_name:
            return
        size = estimate_bytes(msg)
        if size > MAX_NODE_REPORT_BYTES or max(len(msg.facts), len(msg.stats)) > MAX_STATS_KEYS:
            current = session()
            if current is not None:
                await current.close_for_bound(
                    BOUND_REPORTS, f"host report of {size} bytes over {MAX_NODE_REPORT_BYTES}")
            return
        current = session()
        if current is not None and not current.closed:
            sessions.set_host(identity, current, msg, time.time())

    return record


def account_session_end(collector: TunnelCollector, session: Session, session_key: str) -> None:
    """Count an agent cut off for a bound (``rancher_tunnel_bound_disconnects_total``)."""
    bound = session.bound_exceeded
    if bound is not None:
        collector.bound_disconnects[bound] = collector.bound_disconnects.get(bound, 0) + 1
        log.warning(
            "agent disconnected for exceeding a bound",
            session=session_key,
            bound=bound,
            reason=session.close_reason,
        )
    collector.closed_dials_over_limit += session.stats.dials_over_limit
