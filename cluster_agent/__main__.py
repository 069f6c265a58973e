"""``cluster-agent``: one per downstream cluster. Opens the tunnel to the server and dials the
cluster's API server for it. Configured from the environment:

    CATTLE_SERVER           https:// URL of the server (required)
    CATTLE_TOKEN            the cluster's registration token (required)
    CATTLE_CA_CHECKSUM      SHA-256 of the server's CA; the agent refuses a CA that does not match
    CATTLE_CA_CERT_FILE     trust this CA file instead (no checksum)
    CATTLE_K8S_API          host:port of the cluster's API server (default: in-cluster service)
    CATTLE_K8S_CA_FILE      CA of the cluster's API server (default: the service account's)
    CATTLE_K8S_TOKEN_FILE   the agent's API token (default: the service account's); the server
                            uses it to manage per-user impersonation accounts
    CATTLE_KUBECONFIG       import from outside: take the API server and CA from this kubeconfig
    CATTLE_ALLOWED_TARGETS  comma-separated HOST:PORT the server may dial (default: the API server)
    CATTLE_HEALTH_LISTEN    HOST:PORT for /healthz and /metrics of the agent (off by default)
    CATTLE_CREDENTIAL_FILE  where the agent keeps the credential the server issues it (0600)
    CATTLE_CREDENTIAL_SECRET  or this Secret in CATTLE_NAMESPACE (default cattle-system)
    TUNNEL_PING_INTERVAL_S, TUNNEL_PONG_TIMEOUT_S  keepalive tuning

``cluster-agent import --kubeconfig FILE`` runs the agent from outside the cluster, with the API
server and an agent identity derived from a kubeconfig the user already has.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Mapping
from typing import Any

from cluster_agent import cliargs
from cluster_agent.config import AgentConfig
from cluster_agent.runner import agent_main


def describe(config: AgentConfig) -> tuple[Mapping[str, Any], str]:
    params = {
        "role": "cluster",
        "cluster": {
            "address": config.api_address,
            "caCert": base64.b64encode(config.api_ca_pem.encode()).decode(),
            "token": config.api_token,
        },
    }
    return params, "cluster-agent"


def main() -> None:
    if len(sys.argv) == 1 or sys.argv[1] != "import":
        cliargs.parse("cluster-agent", __doc__, sys.argv[1:],
                      epilog="cluster-agent import --help: run it from outside the cluster")
    if len(sys.argv) > 1 and sys.argv[1] == "import":
        from cluster_agent.config import ConfigError
        from cluster_agent.importer import parse_args, prepare_env
        from cluster_agent.preflight import PreflightFailed, check

        args = parse_args(sys.argv[2:])
        try:
            check(args.kubeconfig)  # nothing changes in the cluster unless all of it is right
            os.environ.update(prepare_env(args.kubeconfig, args.credential_file))
        except PreflightFailed as e:
            problems = "\n".join(f"  - {line}" for line in str(e).splitlines())
            print(f"cluster-agent import: nothing was changed in the cluster:\n{problems}",
                  file=sys.stderr)
            sys.exit(e.exit_code)
        except ConfigError as e:
            print(f"cluster-agent import: {e}", file=sys.stderr)
            sys.exit(2)
    agent_main("cluster-agent", describe)


if __name__ == "__main__":
    main()
