"""What the agent polls (the rest is watched): its API server's ``/readyz`` with the checks that
fail there, and node usage from ``metrics.k8s.io`` where the cluster serves it."""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

from cluster_agent import quantity
from cluster_agent.kube import AgentKube, KubeError

MAX_DETAIL_CHARS = 200
MAX_FAILING_CHECKS = 32
HTTP_OK = 200
NODE_METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/nodes"


def agent_version() -> str:
    try:
        return importlib.metadata.version("rancher-py")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def failing_checks(body: str) -> list[str]:
    """The names of the ``[-]name failed: ...`` lines of a verbose ``/readyz``."""
    out = []
    for line in body.splitlines():
        if line.startswith("[-]"):
            out.append(line[3:].split(" ", 1)[0])
    return out[:MAX_FAILING_CHECKS]


async def check_readyz(kube: AgentKube, rtt_s: float | None) -> dict[str, Any]:
    """The fields of :class:`rancher_tunnel.messages.Health`."""
    out: dict[str, Any] = {"agent_version": agent_version(), "heartbeat_at": time.time(),
                           "rtt_ms": None if rtt_s is None else round(rtt_s * 1000, 3)}
    try:
        status, body = await kube.call_once("GET", "/readyz", {"verbose": "true"})
    except KubeError as e:
        return {**out, "healthy": False, "components": {"apiserver": False},
                "detail": f"API server unreachable: {e}"[:MAX_DETAIL_CHARS]}
    healthy = status == HTTP_OK
    return {**out, "healthy": healthy, "components": {"apiserver": healthy},
            "failing_checks": failing_checks(body) if not healthy else [],
            "detail": "" if healthy else f"readyz: HTTP {status}: {body}"[:MAX_DETAIL_CHARS]}


async def node_usage(kube: AgentKube) -> dict[str, dict[str, float]] | None:
    """Node name -> cpu_used (cores), memory_used_bytes; None when metrics.k8s.io is not
    served (or refuses us)."""
    try:
        doc = await kube.get_json(NODE_METRICS_PATH)
    except KubeError:
        return None
    out: dict[str, dict[str, float]] = {}
    for item in doc.get("items") or []:
        name = str((item.get("metadata") or {}).get("name") or "")
        usage = item.get("usage") or {}
        if name:
            out[name] = {"cpu_used": quantity.parse(usage.get("cpu", 0)),
                         "memory_used_bytes": quantity.parse(usage.get("memory", 0))}
    return out
