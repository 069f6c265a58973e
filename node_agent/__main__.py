"""``node-agent``: a DaemonSet on every node. Carries the tunnel when no cluster agent is connected
(the server dials through it then) and reports the node's facts. Configured like the cluster agent,
plus ``CATTLE_NODE_NAME`` (default: the host name)."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Mapping
from typing import Any

from cluster_agent.config import AgentConfig
from cluster_agent.runner import agent_main


def node_facts(name: str) -> dict[str, object]:
    return {
        "name": name,
        "hostname": socket.gethostname(),
        "os": platform.system().lower(),
        "arch": platform.machine(),
        "kernel": platform.release(),
        "cpus": os.cpu_count() or 0,
    }


def describe(config: AgentConfig) -> tuple[Mapping[str, Any], str]:
    name = (config.node_name or socket.gethostname()).lower()
    return {"role": "node", "node": node_facts(name)}, f"node-agent:{name}"


def main() -> None:
    agent_main("node-agent", describe)


if __name__ == "__main__":
    main()
