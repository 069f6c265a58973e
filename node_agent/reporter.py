"""The node agent's report over its own tunnel: a :class:`~rancher_tunnel.messages.HostReport`
at the start of every session, then every ``interval_s`` (``CATTLE_HEALTH_INTERVAL_S``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from node_agent.host import HostSampler
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.logs import get_logger
from rancher_tunnel.messages import HostReport
from rancher_tunnel.session import Session

log = get_logger(component="node-reporter")


class HostReporter:
    def __init__(self, node: str, root: Path, interval_s: float) -> None:
        self.node = node
        self.interval_s = interval_s
        self.sampler = HostSampler(root)
        self.sent = 0

    def report(self) -> HostReport:
        return HostReport(self.node, self.sampler.facts(), self.sampler.stats(),
                          self.sampler.runtime_sockets(), time.time())

    async def run(self, session: Session) -> None:
        """One session (cancelled when it ends)."""
        try:
            await session.wait_ready()
            while not session.closed:
                await session.send_message(self.report())
                self.sent += 1
                await asyncio.sleep(self.interval_s)
        except SessionClosed:
            return
