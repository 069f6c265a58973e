"""What the cluster agent reports to the server over the tunnel's typed messages, every
``CATTLE_HEALTH_INTERVAL_S`` (15 s, as Rancher checks): the health of its cluster's API server
(``/readyz``), one NodeInfo per node, and cluster stats (nodes, ready nodes, capacity)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import aiohttp

from cluster_agent.config import AgentConfig
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.logs import get_logger
from rancher_tunnel.messages import Health, Message, NodeInfo, Stats
from rancher_tunnel.session import Session

API_TIMEOUT_S = 10.0
MAX_NODES_REPORTED = 5000
MAX_DETAIL_CHARS = 200

log = get_logger(component="reporter")


def _quantity_cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value or 0)


_MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9}


def _quantity_bytes(value: str) -> float:
    for suffix, factor in _MEM_UNITS.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value or 0)


def node_messages(nodes: list[dict[str, Any]]) -> list[Message]:
    """NodeInfo for each node and one Stats for the cluster (pure, tested)."""
    out: list[Message] = []
    ready = 0
    cpu = mem = 0.0
    for node in nodes[:MAX_NODES_REPORTED]:
        meta, status = node.get("metadata", {}), node.get("status", {})
        capacity = {str(k): str(v) for k, v in (status.get("capacity") or {}).items()}
        out.append(
            NodeInfo(
                name=str(meta.get("name", "")),
                labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
                capacity=capacity,
                kubelet_version=str((status.get("nodeInfo") or {}).get("kubeletVersion", "")),
            )
        )
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ready += conds.get("Ready") == "True"
        with contextlib.suppress(ValueError):
            cpu += _quantity_cpu(capacity.get("cpu", "0"))
            mem += _quantity_bytes(capacity.get("memory", "0"))
    out.append(
        Stats(
            values={
                "nodes": float(len(nodes)),
                "nodes_ready": float(ready),
                "cpu_capacity": cpu,
                "memory_capacity_bytes": mem,
            }
        )
    )
    return out


class Reporter:
    def __init__(self, config: AgentConfig, interval_s: float) -> None:
        self._config = config
        self._interval_s = interval_s
        self._headers = {"Accept": "application/json"}
        if config.api_token:
            self._headers["Authorization"] = f"Bearer {config.api_token}"
        self._ssl = ssl.create_default_context(cadata=config.api_ca_pem or None)

    async def _collect(self, http: aiohttp.ClientSession) -> list[Message]:
        base = f"https://{self._config.api_address}"
        try:
            async with http.get(f"{base}/readyz", ssl=self._ssl) as resp:
                body = (await resp.text())[:MAX_DETAIL_CHARS]
                healthy = resp.status == 200
            if not healthy:
                return [
                    Health(
                        healthy=False,
                        detail=f"readyz: HTTP {resp.status}: {body}",
                        components={"apiserver": False},
                    )
                ]
            async with http.get(f"{base}/api/v1/nodes", ssl=self._ssl) as resp:
                if resp.status != 200:
                    detail = f"list nodes: HTTP {resp.status}"
                    return [Health(healthy=True, detail=detail, components={"apiserver": True})]
                nodes = (await resp.json()).get("items") or []
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
            return [
                Health(
                    healthy=False,
                    detail=f"API server unreachable: {e}"[:MAX_DETAIL_CHARS],
                    components={"apiserver": False},
                )
            ]
        return [Health(healthy=True, components={"apiserver": True}), *node_messages(nodes)]

    async def run(self, session: Session) -> None:
        """Report until the session ends (the first report goes out at once)."""
        if not self._config.api_address:
            return
        await session.wait_ready()
        timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout, headers=self._headers) as http:
            while not session.closed:
                try:
                    for msg in await self._collect(http):
                        await session.send_message(msg)
                except SessionClosed:
                    return
                await asyncio.sleep(self._interval_s)
