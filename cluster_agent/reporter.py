"""What the cluster agent tells the server about its cluster: informers (list+watch of nodes,
pods, namespaces and events on kubernetes_asyncio) keep the agent's picture for the process's
lifetime; ``/readyz`` and ``metrics.k8s.io`` are polled every ``CATTLE_HEALTH_INTERVAL_S``; each
tunnel session gets a :class:`~cluster_agent.sender.PictureSender` that resynchronises the server
(a new generation: snapshot, then changes)."""

from __future__ import annotations

import asyncio

from cluster_agent import slim
from cluster_agent.apihealth import agent_version, check_readyz, node_usage
from cluster_agent.config import AgentConfig
from cluster_agent.informer import Informer
from cluster_agent.kube import AgentKube
from cluster_agent.picture import AgentPicture
from cluster_agent.sender import PictureSender
from rancher_tunnel.logs import get_logger
from rancher_tunnel.messages import Message
from rancher_tunnel.session import Session

MAX_AGENT_EVENTS = 10_000  # events kept (and mirrored on the server); the oldest go first

log = get_logger(component="reporter")


class Reporter:
    def __init__(self, config: AgentConfig, interval_s: float,
                 kube: AgentKube | None = None) -> None:
        self._config = config
        self._interval_s = interval_s
        self._kube = kube or AgentKube.from_config(config, int(config.watch_timeout_s))
        self.picture = AgentPicture(MAX_AGENT_EVENTS)
        self.informers: list[Informer] = []
        self._session: Session | None = None
        self._sender: PictureSender | None = None

    async def on_message(self, msg: Message) -> None:
        """The server's messages (acknowledgements, resync requests) for the current session's
        sender; one that arrives between sessions concerns no generation and is dropped."""
        if self._sender is not None:
            await self._sender.on_message(msg)

    async def run_informers(self) -> None:
        """Forever (cancel to stop): the informers and the polls."""
        p = self.picture
        async with self._kube as kube:
            self.informers = [
                Informer(kube, "/api/v1/namespaces", slim.namespace, p.on_namespace),
                Informer(kube, "/api/v1/nodes", slim.node, p.on_node),
                Informer(kube, "/api/v1/pods", slim.pod, p.on_pod),
                # events.k8s.io/v1 shares this storage: the core view carries both recorders'
                Informer(kube, "/api/v1/events", slim.event, p.on_event),
            ]
            async with asyncio.TaskGroup() as tg:
                for inf in self.informers:
                    tg.create_task(inf.run(), name=f"informer {inf.path}")
                tg.create_task(self._poll(kube), name="api-health")

    async def _poll(self, kube: AgentKube) -> None:
        while True:
            session = self._session
            rtt = session.rtt_s if session is not None else None
            self.picture.set_health(await check_readyz(kube, rtt))
            usage = await node_usage(kube)
            if usage is not None:
                self.picture.set_usage(usage)
            await asyncio.sleep(self._interval_s)

    async def run(self, session: Session) -> None:
        """One session: resynchronise the server, then send changes until the session ends."""
        if not self._config.api_address:
            return
        sender = PictureSender(self.picture, session, agent_version())
        self._session, self._sender = session, sender
        try:
            await sender.run()
        finally:
            if self._session is session:
                self._session, self._sender = None, None
