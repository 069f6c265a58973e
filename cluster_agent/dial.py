"""Serving the server's dial requests: only to allowed targets (by default the cluster's API
server); anything else is refused with a clear reason and the session carries on."""

from __future__ import annotations

from dataclasses import dataclass

from cluster_agent.config import AgentConfig
from cluster_agent.constants import DIAL_CONNECT_TIMEOUT_S
from rancher_tunnel.logs import get_logger
from rancher_tunnel.session import StreamHandler
from rancher_tunnel.splice import serve_tcp
from rancher_tunnel.stream import IncomingStream

log = get_logger(component="dial")


def parse_target(target: str) -> tuple[str, int]:
    """``tcp://host:port`` (or bare ``host:port``) to (host, port); ValueError if malformed."""
    rest = target[len("tcp://") :] if target.startswith("tcp://") else target
    if "://" in rest:
        raise ValueError(f"unsupported target scheme in {target!r}")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ValueError(f"target {target!r} is not host:port")
    p = int(port)
    if not 0 < p < 65536:
        raise ValueError(f"target {target!r} has an invalid port")
    return host, p


@dataclass
class DialStats:
    """The server's dials this agent served and refused (``cattle_agent_dials_total``)."""

    served: int = 0
    refused: int = 0


def make_dial_handler(config: AgentConfig, stats: DialStats | None = None) -> StreamHandler:
    counts = stats if stats is not None else DialStats()

    async def on_stream(incoming: IncomingStream) -> None:
        try:
            host, port = parse_target(incoming.target)
        except ValueError as e:
            counts.refused += 1
            await incoming.refuse(str(e))
            return
        if not config.allows(host, port):
            counts.refused += 1
            log.warning("dial refused", target=f"{host}:{port}")
            await incoming.refuse(f"target {host}:{port} is not allowed by this agent")
            return
        counts.served += 1
        await serve_tcp(incoming, host, port, connect_timeout_s=DIAL_CONNECT_TIMEOUT_S)

    return on_stream
