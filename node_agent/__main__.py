"""``node-agent``: a DaemonSet on every node. Carries the tunnel when no cluster agent is connected
(the server dials through it then, and only to the cluster's API server) and reports its host's
facts and stats from /proc and /sys every CATTLE_HEALTH_INTERVAL_S. Configured like the cluster
agent, plus ``CATTLE_NODE_NAME`` (default: the host name) and ``CATTLE_HOST_ROOT``."""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster_agent import cliargs
from cluster_agent.config import AgentConfig
from cluster_agent.runner import SessionHook, agent_main
from node_agent.reporter import HostReporter

DEFAULT_HOST_ROOT = "/"

CONFIG_HELP = """

Environment: as cluster-agent (cluster-agent --help lists every variable), plus
    CATTLE_NODE_NAME        the node's name (default: the host name)
    CATTLE_HOST_ROOT        where the host's filesystem is mounted (default /): /proc, /sys and
                            the container runtime sockets are read under it
    CATTLE_HEALTH_INTERVAL_S  how often the host is reported (default 15 s)
The node agent dials only its cluster's API server (CATTLE_ALLOWED_TARGETS is ignored).
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


def node_name(config: AgentConfig) -> str:
    return (config.node_name or socket.gethostname()).lower()


def describe(config: AgentConfig) -> tuple[Mapping[str, Any], str]:
    name = node_name(config)
    return {"role": "node", "node": node_facts(name)}, f"node-agent:{name}"


def host_reports(config: AgentConfig) -> SessionHook:
    root = Path(os.environ.get("CATTLE_HOST_ROOT") or DEFAULT_HOST_ROOT)
    return HostReporter(node_name(config), root, config.report_interval_s).run


def main() -> None:
    cliargs.parse("node-agent", __doc__ + CONFIG_HELP, sys.argv[1:])
    agent_main("node-agent", describe, host_reports)


if __name__ == "__main__":
    main()
