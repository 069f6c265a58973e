"""``node-agent``: a DaemonSet on every node. Carries the tunnel when no cluster agent is connected
(the server dials through it then) and reports the node's facts. Configured like the cluster agent,
plus ``CATTLE_NODE_NAME`` (default: the host name)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from typing import Any

from cluster_agent import cliargs
from cluster_agent.config import AgentConfig
from cluster_agent.runner import agent_main

CONFIG_HELP = """

Environment: as cluster-agent (cluster-agent --help lists every variable), plus
    CATTLE_NODE_NAME        the node's name (default: the host name)
"""


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
    cliargs.parse("node-agent", __doc__ + CONFIG_HELP, sys.argv[1:])
    agent_main("node-agent", describe)


if __name__ == "__main__":
    main()
